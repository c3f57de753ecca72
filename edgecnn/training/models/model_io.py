"""Saving and loading Keras models: atomic writes, safe loading of untrusted files.

Model files are untrusted input. We load only the ``.keras`` format with
``safe_mode=True`` (it refuses Lambda layers that carry Python bytecode) and never the
legacy HDF5/SavedModel formats, which can execute code. A model saved by Keras 3 is
detected from its ``metadata.json`` and refused with the way to rebuild it in tf_keras.

Quantization-aware models live here too, because loading any run model may meet one.
``quantize_for_training`` annotates every layer and applies tfmot's default 8-bit scheme, or with
``preserve_sparsity`` the prune-preserving scheme (``Default8BitPrunePreserveQuantizeScheme``).
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

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from edgecnn.atomic import atomic_path
from edgecnn.errors import ModelError
from edgecnn.training.keras_compat import keras

SCHEMES = ("default_8bit", "prune_preserve_8bit")
QAT_ARCHIVE_MARKER = "qat_weights.npz"

# tfmot: "Layer foo:<class 'tf_keras.src....LayerNormalization'> is not supported. You can ..."
_UNSUPPORTED = re.compile(r"Layer (?P<name>[^:\s]+):<class '(?P<cls>[^']+)'> is not supported")


def save_keras_model(model, path) -> Path:
    """Save ``model`` to ``path`` (.keras) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def keras_version_of(path) -> str:
    """The Keras version recorded in a .keras archive, after checking it is one."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Keras model {path} does not exist; check the path")
    if path.suffix != ".keras":
        raise ModelError(
            f"{path} is not a .keras file; edgecnn loads only the .keras format (HDF5 and SavedModel "
            "can run arbitrary code); re-save it with model.save('model.keras') in tf_keras"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise ModelError(f"{path} is not a valid .keras archive (corrupt or truncated); re-save the model") from None
    return str(meta.get("keras_version", ""))


def load_keras_model(path, *, quantized: bool = False):
    """Load a .keras model built with tf_keras; ``quantized`` for QAT models (tfmot's custom layers)."""
    path = Path(path)
    version = keras_version_of(path)
    if version.startswith("3"):
        raise ModelError(
            f"{path} was saved by Keras {version}; tensorflow-model-optimization needs Keras 2: rebuild the "
            "model with 'import tf_keras as keras' (pip install tf-keras) and save it again as .keras"
        )
    if is_qat_archive(path):
        # edgecnn's QAT archive (qat.keras): tfmot models do not survive a plain .keras round trip.
        return load_qat_model(path)
    try:
        if quantized:
            import tensorflow_model_optimization as tfmot

            with tfmot.quantization.keras.quantize_scope():
                return keras.models.load_model(path, compile=False, safe_mode=True)
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ModelError(
                f"{path} contains a Lambda layer with Python code, which edgecnn never executes from a model "
                "file; replace it with built-in layers and save again"
            ) from None
        raise ModelError(f"cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
    except TypeError as exc:
        raise ModelError(
            f"cannot load {path}: it uses a layer or option tf_keras does not know "
            f"({str(exc).splitlines()[0][:160]}); save it with tf_keras and built-in layers"
        ) from None


def copy_model(model):
    """A new model with the same architecture and weights (so pruning never mutates the input)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


# --- quantization-aware models (tfmot) ----------------------------------------------------------

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
