"""Int8 quantization-aware training with tensorflow-model-optimization.

``quantize_for_training`` annotates every layer and applies tfmot's default 8-bit scheme, or
with ``preserve_sparsity`` the prune-preserving scheme (``Default8BitPrunePreserveQuantizeScheme``),
which keeps the zeros of a pruned model through QAT. ``qat_run`` is the pipeline stage: it
fine-tunes from the run's float (or pruned) weights with a low learning rate, checks that the
sparsity survived when asked to, records test accuracy, and writes ``qat.keras``.

The model's quantization and its qat.keras archive live in ``training/models/model_io.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from edgecnn import atomic
from edgecnn.errors import ModelError, RunDirError
from edgecnn.training.data import run_inputs
from edgecnn.training.models.model_io import load_keras_model, quantize_for_training, save_qat_model
from edgecnn.training.optimize import finetune
from edgecnn.training.optimize.sparsity import sparsity_by_layer

# QAT fine-tunes an already trained model: a twentieth of the training learning rate only lets
# the weights adapt to the simulated int8 rounding instead of relearning.
QAT_LR_FACTOR = 0.05


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
    run = run_inputs.open_run(run_path)
    recipe = run.load_recipe()
    chosen = choose_start(run, start, preserve_sparsity)
    settings = run_inputs.fine_tune(recipe, "qat", lr_factor=QAT_LR_FACTOR, epochs=epochs, batch_size=batch_size,
                                    learning_rate=learning_rate)
    epochs, batch_size, learning_rate = settings.epochs, settings.batch_size, settings.learning_rate
    if epochs < 1:
        raise RunDirError(f"--epochs must be at least 1, got {epochs}")
    spec = run_inputs.input_spec(recipe)

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
