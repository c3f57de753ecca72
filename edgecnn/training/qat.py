"""Int8 quantization-aware training with tensorflow-model-optimization.

``quantize_for_training`` annotates every layer and applies tfmot's default 8-bit scheme, or
with ``preserve_sparsity`` the prune-preserving scheme (``Default8BitPrunePreserveQuantizeScheme``),
which keeps the zeros of a pruned model through QAT. ``qat_run`` is the pipeline stage: it
fine-tunes from the run's float (or pruned) weights with a low learning rate, checks that the
sparsity survived when asked to, records test accuracy, and writes ``qat.keras``.

The qat.keras archive. tfmot's QAT models do not survive a .keras round trip (loading builds
the quantize layers twice and the variable lists no longer match; tfmot PR #1123 is open), so
edgecnn stores what rebuilds the model exactly instead:
  metadata.json      Keras version (as in any .keras file)
  start.keras        the model QAT started from (plain tf_keras layers, loaded with safe mode)
  qat.json           the quantization scheme and provenance
  qat_weights.npz    every variable of the QAT model, in order (numpy, no pickle)
``load_qat_model`` applies the same scheme to start.keras and sets the saved weights: no code
from the file is ever executed.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelError, RunDirError
from .keras_compat import keras

SCHEMES = ("default_8bit", "prune_preserve_8bit")
QAT_ARCHIVE_MARKER = "qat_weights.npz"
# QAT fine-tunes an already trained model: a twentieth of the training learning rate only lets
# the weights adapt to the simulated int8 rounding instead of relearning.
QAT_LR_FACTOR = 0.05

# tfmot: "Layer foo:<class 'tf_keras.src....LayerNormalization'> is not supported. You can ..."
_UNSUPPORTED = re.compile(r"Layer (?P<name>[^:\s]+):<class '(?P<cls>[^']+)'> is not supported")


def _scheme(name: str):
    import tensorflow_model_optimization as tfmot

    if name == "prune_preserve_8bit":
        return tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme()
    return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()


def check_quantizable(model) -> None:
    """Refuse, naming the layer, what tfmot cannot quantize before it fails deep inside."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise ModelError(f"layer {layer.name!r} is a nested model; tfmot cannot quantize a model inside a model: "
                             "build it as one flat functional model")
        if isinstance(layer, keras.layers.Lambda):
            raise ModelError(f"layer {layer.name!r} is a Lambda layer; tfmot cannot see what it computes, so it "
                             "cannot simulate int8 for it: replace it with built-in layers")


def quantize_for_training(model, *, preserve_sparsity: bool = False):
    """A QAT model of ``model`` (fake-quantized int8 weights and activations); ``model`` is not changed."""
    import tensorflow_model_optimization as tfmot

    from .prune import copy_model

    check_quantizable(model)
    scheme = "prune_preserve_8bit" if preserve_sparsity else "default_8bit"
    q = tfmot.quantization.keras
    try:
        annotated = q.quantize_annotate_model(copy_model(model))
        with q.quantize_scope():
            return q.quantize_apply(annotated, _scheme(scheme))
    except (RuntimeError, ValueError) as exc:
        raise _explain(exc) from None


def _explain(exc: Exception) -> ModelError:
    text = str(exc)
    match = _UNSUPPORTED.search(text)
    if match:
        kind = match["cls"].rsplit(".", 1)[-1]
        return ModelError(
            f"cannot quantize layer {match['name']!r} ({kind}): tfmot's 8-bit scheme has no int8 simulation for "
            f"{kind} (it knows Conv2D, DepthwiseConv2D, Dense, BatchNormalization after a convolution, ReLU, Add, "
            "pooling, reshape and softmax); replace the layer or export with --quantize int8 (post-training) instead")
    first = text.splitlines()[0][:200] if text else type(exc).__name__
    return ModelError(f"tfmot cannot quantize this model: {first}")


# --- the qat.keras archive -----------------------------------------------------------------------

def save_qat_model(qat_model, start_model, path, *, scheme: str, info: dict | None = None) -> Path:
    """Write the archive described in the module docstring, atomically."""
    from ..atomic import atomic_path
    from .model_io import save_keras_model

    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}")
    path = Path(path)
    weights = io.BytesIO()
    np.savez(weights, *qat_model.get_weights())
    with tempfile.TemporaryDirectory() as tmp:
        start_file = save_keras_model(start_model, Path(tmp) / "start.keras")
        with zipfile.ZipFile(start_file) as start:
            metadata = json.loads(start.read("metadata.json"))
        metadata["edgecnn_qat"] = 1
        with atomic_path(path) as out, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
            archive.write(start_file, "start.keras")
            archive.writestr("qat.json", json.dumps({"scheme": scheme, **(info or {})}))
            archive.writestr(QAT_ARCHIVE_MARKER, weights.getvalue())
    return path


def is_qat_archive(path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return QAT_ARCHIVE_MARKER in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def qat_info(path) -> dict:
    """The archive's qat.json: scheme and provenance (start model, preserve_sparsity ...)."""
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("qat.json"))


def load_qat_model(path):
    """Rebuild the QAT model stored by ``save_qat_model`` (safe: no code from the file runs)."""
    from .model_io import keras_version_of, load_keras_model

    path = Path(path)
    keras_version_of(path)  # exists, is a .keras zip, not Keras 3
    try:
        with zipfile.ZipFile(path) as archive:
            info = json.loads(archive.read("qat.json"))
            with tempfile.TemporaryDirectory() as tmp:
                start_path = Path(tmp) / "start.keras"
                start_path.write_bytes(archive.read("start.keras"))
                start = load_keras_model(start_path)
            with np.load(io.BytesIO(archive.read(QAT_ARCHIVE_MARKER)), allow_pickle=False) as saved:
                weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    except (KeyError, zipfile.BadZipFile, ValueError) as exc:
        raise ModelError(f"{path} is not a complete edgecnn QAT archive ({exc}); run 'edgecnn qat' again") from None
    if info.get("scheme") not in SCHEMES:
        raise ModelError(f"{path} names an unknown quantization scheme {info.get('scheme')!r}; run 'edgecnn qat' again")
    model = quantize_for_training(start, preserve_sparsity=info["scheme"] == "prune_preserve_8bit")
    expected = [tuple(w.shape) for w in model.get_weights()]
    if expected != [tuple(w.shape) for w in weights]:
        raise ModelError(f"{path} holds weights that do not fit its model (saved by another edgecnn or tfmot "
                         "version?); run 'edgecnn qat' again")
    model.set_weights(weights)
    return model


# --- the pipeline stage -----------------------------------------------------------------------------

@dataclasses.dataclass
class QatStart:
    path: Path
    kind: str  # "float" or "pruned"


def choose_start(run, start: str | None, preserve_sparsity: bool) -> QatStart:
    """The model QAT starts from: ``start`` if given, else pruned.keras when present, else float.keras."""
    if preserve_sparsity and start == "float":
        raise RunDirError("--preserve-sparsity keeps a pruned model's zeros; it needs --from pruned, not --from float")
    if start is None:
        start = "pruned" if (preserve_sparsity or run.pruned_model.is_file()) else "float"
    if start == "pruned":
        run.require(run.pruned_model, f"edgecnn prune {run.path} --sparsity 0.5")
        return QatStart(run.pruned_model, "pruned")
    if start == "float":
        return QatStart(run.float_model, "float")
    raise RunDirError(f"--from must be float or pruned, got {start!r}")


def qat_run(run_path, *, epochs: int | None = None, preserve_sparsity: bool = False, start: str | None = None,
            batch_size: int | None = None, learning_rate: float | None = None, progress: bool = True) -> dict:
    """QAT-fine-tune a run's model; writes ``qat.keras`` and ``qat_report.json``, returns the report."""
    import sys

    from .. import atomic
    from . import finetune, sources
    from .model_io import load_keras_model
    from .sparsity import sparsity_by_layer

    run = sources.open_run(run_path)
    recipe = run.load_recipe()
    chosen = choose_start(run, start, preserve_sparsity)
    epochs = int(epochs if epochs is not None else recipe.get("qat", {}).get("epochs", 3))
    if epochs < 1:
        raise RunDirError(f"--epochs must be at least 1, got {epochs}")
    batch_size = int(batch_size or sources.batch_size(recipe))
    learning_rate = float(learning_rate or sources.train_learning_rate(recipe) * QAT_LR_FACTOR)
    spec = sources.input_spec(recipe)

    start_model = load_keras_model(chosen.path)
    if chosen.kind == "pruned" and not preserve_sparsity and progress:
        print("note: starting from pruned.keras without --preserve-sparsity: QAT will refill the pruned weights",
              file=sys.stderr)
    qat_model = quantize_for_training(start_model, preserve_sparsity=preserve_sparsity)
    train = finetune.load_split(run, "train", spec)
    test = finetune.load_split(run, "test", spec)
    history = finetune.fit(qat_model, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                           stage="qat", progress=progress)

    before, after = sparsity_by_layer(start_model), sparsity_by_layer(qat_model)
    if preserve_sparsity:
        check_sparsity_kept(before, after)
    float_model = start_model if chosen.kind == "float" else load_keras_model(run.float_model)
    report = {
        "start": chosen.path.name,
        "scheme": "prune_preserve_8bit" if preserve_sparsity else "default_8bit",
        "preserve_sparsity": preserve_sparsity,
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "accuracy": {"float": finetune.accuracy(float_model, test),
                     "start": finetune.accuracy(start_model, test),
                     "qat": finetune.accuracy(qat_model, test),
                     "split": "test", "num_samples": len(test)},
        "sparsity": {"before": before, "after": after},
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    save_qat_model(qat_model, start_model, run.qat_model, scheme=report["scheme"],
                   info={"start": chosen.path.name, "start_kind": chosen.kind, "preserve_sparsity": preserve_sparsity})
    atomic.write_json(run.qat_report, report)
    return report


def check_sparsity_kept(before: dict[str, float], after: dict[str, float]) -> None:
    """Every layer's fraction of zeros is unchanged by QAT (else prune-preserving QAT failed)."""
    lost = {name: (before[name], after.get(name, 0.0)) for name in before
            if before[name] > 0 and after.get(name, 0.0) < before[name]}
    if lost:
        name, (was, now) = next(iter(lost.items()))
        raise ModelError(f"QAT lost the pruned zeros of {len(lost)} layer(s) (e.g. {name}: {was:.1%} -> {now:.1%}); "
                         "this should not happen with --preserve-sparsity: please report it")
