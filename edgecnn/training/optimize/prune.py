"""Magnitude pruning with tensorflow-model-optimization: float model in, sparse float model out.

``prune_model`` wraps the chosen layers in ``prune_low_magnitude`` with a ``PolynomialDecay``
schedule computed from the real number of fine-tune steps, fine-tunes, and returns the model
after ``strip_pruning`` with its measured per-layer sparsity. It never touches the model it is
given: pruning works on a copy.

Which layers are pruned (``plan_layers``), and why the others are not:
- the first convolution (the stem): it sees the raw image through a few hundred weights; every
  later feature depends on it, and pruning it saves almost nothing;
- the classifier (the last Dense layer): each of its weights is a direct vote for one class, and
  it is small next to the backbone;
- depthwise convolutions: 9 weights per channel, a few percent of the parameters; zeroing
  them removes whole spatial taps of a channel and costs accuracy for a negligible size gain;
- separable convolutions: edgecnn's models have none; their two kernels would need separate
  targets.
Every other Conv2D and Dense layer (the pointwise 1x1 convolutions hold most of the weights of
a MobileNet) is pruned to the target sparsity.
"""

from __future__ import annotations

import dataclasses
import math

from edgecnn import atomic
from edgecnn.errors import ModelError, RecipeError
from edgecnn.training.data import run_inputs
from edgecnn.training.fit.schedule import steps_per_epoch
from edgecnn.training.keras_compat import keras
from edgecnn.training.models.model_io import copy_model, load_keras_model, save_keras_model
from edgecnn.training.optimize import finetune
from edgecnn.training.optimize.sparsity import kernel_sparsity, overall_sparsity

# Mask updates spread over the pruning ramp: enough for a gradual ramp, few enough that each
# update leaves the network some steps to adapt.
MAX_MASK_UPDATES = 16
# Fraction of the fine-tune spent ramping sparsity up; the rest recovers accuracy at the target.
RAMP_FRACTION = 2 / 3
# Fine-tuning a trained model: a tenth of the training learning rate keeps what it learned.
FINE_TUNE_LR_FACTOR = 0.1

SKIP_FIRST_CONV = "first convolution (stem): few weights, and every later feature depends on it"
SKIP_CLASSIFIER = "classifier: each weight is a direct class vote, and the layer is small"
SKIP_DEPTHWISE = "depthwise: 9 weights per channel, a few % of the model; pruning costs accuracy for little size"
SKIP_SEPARABLE = "separable convolution: not used by edgecnn models; its two kernels would need separate targets"


def check_sparsity(value) -> float:
    """``value`` as a float in (0, 1), or a one-line error."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RecipeError(f"--sparsity must be a number between 0 and 1, got {value!r}; e.g. --sparsity 0.5") from None
    if not (0.0 < number < 1.0) or math.isnan(number):
        raise RecipeError(f"--sparsity must be between 0 and 1 (exclusive), got {value}; e.g. --sparsity 0.5 "
                          "zeroes half of the pruned layers' weights")
    return number


@dataclasses.dataclass(frozen=True)
class PruneSchedule:
    """A PolynomialDecay whose last mask update lands exactly on ``end_step`` (so the target is reached)."""

    target_sparsity: float
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int

    def to_tfmot(self):
        import tensorflow_model_optimization as tfmot

        return tfmot.sparsity.keras.PolynomialDecay(
            initial_sparsity=0.0, final_sparsity=self.target_sparsity,
            begin_step=self.begin_step, end_step=self.end_step, frequency=self.frequency)


def plan_schedule(target_sparsity: float, total_steps: int) -> PruneSchedule:
    """Schedule for ``total_steps`` fine-tune steps (0 .. total_steps-1).

    tfmot updates the mask only at steps where ``(step - begin_step) % frequency == 0`` and
    ``step <= end_step``; its default ``frequency=100`` never fires on a short fine-tune and
    leaves the model dense. Here ``end_step`` is a multiple of ``frequency`` within the ramp,
    so the final update happens and sets the target sparsity.
    """
    target_sparsity = check_sparsity(target_sparsity)
    if total_steps < 2:
        raise RecipeError(f"pruning needs at least 2 fine-tune steps, but this run gives {total_steps}; "
                          "use more --epochs or a smaller --batch-size")
    ramp_end = max(1, int((total_steps - 1) * RAMP_FRACTION))
    frequency = max(1, ramp_end // MAX_MASK_UPDATES)
    end_step = frequency * (ramp_end // frequency)
    return PruneSchedule(target_sparsity, total_steps, 0, end_step, frequency)


@dataclasses.dataclass
class LayerPlan:
    pruned: list[str]
    skipped: dict[str, str]  # layer name -> why it is not pruned


def plan_layers(model) -> LayerPlan:
    """Which layers get pruned; see the module docstring for the reasons."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise ModelError(f"layer {layer.name!r} is a nested model, which pruning cannot wrap; "
                             "build the model as one flat functional model")
    convs = [l for l in model.layers if _is_plain_conv(l)]
    denses = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    first_conv = convs[0].name if convs else None
    classifier = denses[-1].name if denses else None
    pruned, skipped = [], {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            skipped[layer.name] = SKIP_DEPTHWISE
        elif isinstance(layer, keras.layers.SeparableConv2D):
            skipped[layer.name] = SKIP_SEPARABLE
        elif layer.name == first_conv:
            skipped[layer.name] = SKIP_FIRST_CONV
        elif layer.name == classifier:
            skipped[layer.name] = SKIP_CLASSIFIER
        elif _is_plain_conv(layer) or isinstance(layer, keras.layers.Dense):
            pruned.append(layer.name)
    if not pruned:
        raise ModelError("the model has no layer worth pruning (only a stem convolution, depthwise layers and "
                         "the classifier); prune a larger model or skip pruning")
    return LayerPlan(pruned, skipped)


def _is_plain_conv(layer) -> bool:
    return isinstance(layer, keras.layers.Conv2D) and not isinstance(
        layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.Conv2DTranspose))


def wrap_for_pruning(model, plan: LayerPlan, schedule: PruneSchedule):
    """A copy of ``model`` with the planned layers wrapped in ``prune_low_magnitude``."""
    import tensorflow_model_optimization as tfmot

    chosen = set(plan.pruned)
    source = copy_model(model)

    def wrap(layer):
        if layer.name in chosen:
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule.to_tfmot())
        return layer

    # Returning the copy's own layers (wrapped or not) keeps their trained weights.
    return keras.models.clone_model(source, clone_function=wrap)


@dataclasses.dataclass
class PruneResult:
    model: object  # stripped tf_keras model (plain layers, zeros in the pruned kernels)
    plan: LayerPlan
    schedule: PruneSchedule
    layers: list  # LayerSparsity rows measured after strip_pruning
    history: dict

    @property
    def sparsity_of_pruned_layers(self) -> float:
        return overall_sparsity(self.layers, set(self.plan.pruned))

    @property
    def sparsity_of_all_kernels(self) -> float:
        return overall_sparsity(self.layers)


def prune_model(model, train, *, sparsity: float, epochs: int, batch_size: int, learning_rate: float,
                val=None, progress: bool = True) -> PruneResult:
    """Prune a copy of ``model`` to ``sparsity`` while fine-tuning on ``train`` (an ImageSet)."""
    import tensorflow_model_optimization as tfmot

    sparsity = check_sparsity(sparsity)
    if epochs < 1:
        raise RecipeError(f"--epochs must be at least 1, got {epochs}")
    total = epochs * steps_per_epoch(len(train), batch_size)  # the batches finetune.fit feeds per epoch
    schedule = plan_schedule(sparsity, total)
    plan = plan_layers(model)
    wrapped = wrap_for_pruning(model, plan, schedule)
    history = finetune.fit(wrapped, train, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                           stage="prune", val=val, progress=progress,
                           callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(wrapped)
    return PruneResult(stripped, plan, schedule, kernel_sparsity(stripped),
                       {k: [float(v) for v in vs] for k, vs in history.history.items()})


# --- the pipeline stage: run directory in, pruned.keras + prune_report.json out -----------------

def prune_run(run_path, *, sparsity: float, epochs: int | None = None, batch_size: int | None = None,
              learning_rate: float | None = None, progress: bool = True) -> dict:
    """Prune a run's float model; writes ``pruned.keras`` and ``prune_report.json``, returns the report.

    ``float.keras`` is only read. Defaults come from the run's recipe (prune.epochs,
    train.batch_size) and a learning rate a tenth of training's.
    """
    sparsity = check_sparsity(sparsity)
    run = run_inputs.open_run(run_path)
    recipe = run.load_recipe()
    settings = run_inputs.fine_tune(recipe, "prune", lr_factor=FINE_TUNE_LR_FACTOR, epochs=epochs,
                                    batch_size=batch_size, learning_rate=learning_rate)
    epochs, batch_size, learning_rate = settings.epochs, settings.batch_size, settings.learning_rate
    spec = run_inputs.input_spec(recipe)
    model = load_keras_model(run.float_model)
    train = finetune.load_split(run, "train", spec)
    test = finetune.load_split(run, "test", spec)
    result = prune_model(model, train, sparsity=sparsity, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, progress=progress)
    report = {
        "source": run.float_model.name,
        "target_sparsity": sparsity,
        "sparsity_of_pruned_layers": round(result.sparsity_of_pruned_layers, 4),
        "sparsity_of_all_kernels": round(result.sparsity_of_all_kernels, 4),
        "schedule": dataclasses.asdict(result.schedule),
        "epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
        "accuracy": {"float": finetune.accuracy(model, test), "pruned": finetune.accuracy(result.model, test),
                     "split": "test", "num_samples": len(test)},
        "pruned_layers": result.plan.pruned,
        "skipped_layers": result.plan.skipped,
        "layers": [row.to_dict() for row in result.layers],
    }
    save_keras_model(result.model, run.pruned_model)
    atomic.write_json(run.prune_report, report)
    return report
