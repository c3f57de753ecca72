"""The fitting part of ``edgecnn train``: devices, strategy, model, optimizer, fit, best-epoch restore, artifacts.

``train.py`` decides *what* to train (recipe, data, run directory state); this module trains it.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from edgecnn import interrupts
from edgecnn.atomic import write_json
from edgecnn.errors import RecipeError, TrainingInterrupted
from edgecnn.recipe import ModelSettings, Recipe
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import normalize
from edgecnn.training.data.folders import make_dataset
from edgecnn.training.evaluate.degenerate import check_predictions
from edgecnn.training.fit.batchnorm import BatchNormRecalibration
from edgecnn.training.fit.callbacks import Checkpointer, EpochLine, NaNGuard, TrainState, restore_weights
from edgecnn.training.fit.phases import Phase, apply_phase, plan_phases
from edgecnn.training.fit.schedule import MIN_PATIENCE_STEPS, earliest_stop, patience_in_epochs, steps_per_epoch
from edgecnn.training.keras_compat import keras, tf
from edgecnn.training.models.mobilenet import build_model, model_stats
from edgecnn.training.models.model_io import save_keras_model
from edgecnn.training.models.pretrained import build_pretrained
from edgecnn.training.plots import plot_curves


def fit_model(run: RunDir, recipe: Recipe, spec, pixels: dict, state: TrainState, *, resume: bool,
              mixed_precision: bool, strategy, flip: bool, log) -> None:
    """Train (or continue) the recipe's model on decoded ``pixels`` {"train"|"val": (uint8, labels)}.

    From scratch: one phase, Adam with cosine decay over every epoch. From pretrained weights
    (``model.weights``): a warm-up of the new head on the frozen backbone, then a fine-tune of the
    whole model at a lower learning rate (``phases.py``). Each phase compiles its own optimizer.
    """
    settings = recipe.train
    keras.utils.set_random_seed(recipe.data.seed + state.epoch)  # a resumed run does not replay epoch 1's draws
    distribution = _strategy(strategy)
    steps = steps_per_epoch(len(pixels["train"][0]), settings.batch_size)
    with _precision(mixed_precision, log), distribution.scope():
        model, backbone = _build(recipe.model, recipe.run["num_classes"])
    _describe(model, recipe, pixels, distribution, mixed_precision, state, log)
    phases = plan_phases(settings.epochs, steps, settings.lr, backbone)
    datasets = _datasets(recipe, spec, pixels, flip)
    patience = patience_in_epochs(settings.patience, steps)
    if patience != settings.patience:
        log(f"early stopping waits {patience} epochs, not {settings.patience}: {steps} step(s) per epoch, "
            f"and at least {MIN_PATIENCE_STEPS} steps without improvement")
    checkpointer = Checkpointer(run.checkpoints, state, patience=patience, learning_rate=phases[0].schedule,
                                min_epochs=earliest_stop(settings.epochs))
    # BN re-estimation first: it runs before validation, so val metrics and checkpoints see the same model.
    callbacks = [BatchNormRecalibration(datasets["bn"]), NaNGuard(settings.lr), checkpointer,
                 EpochLine(state, settings.epochs)]
    started = time.perf_counter()
    try:
        for phase in phases:
            if state.epoch < phase.end and not state.stopped_early:
                _run_phase(model, phase, backbone, run, recipe, state, datasets, callbacks, distribution, log,
                           resume=resume)
    except BaseException as exc:
        if not interrupts.caused_by_interrupt(exc):  # also what TensorFlow raised in place of a Ctrl-C
            raise
        raise TrainingInterrupted(f"training interrupted after {state.epoch} completed epoch(s); continue with "
                                  f"'edgecnn train {recipe.run['data']} --out {run.path} --resume'") from None
    seconds = time.perf_counter() - started
    if state.stopped_early:
        log(f"stopped early: no validation improvement for {patience} epochs")
    _finish(run, recipe, spec, pixels["val"], state, seconds, log, phases)


def _datasets(recipe: Recipe, spec, pixels: dict, flip: bool) -> dict:
    """The training feeder (augmented), validation, and the unaugmented training images for BN statistics."""
    common = {"num_classes": recipe.run["num_classes"], "batch_size": recipe.train.batch_size}
    return {"train": make_dataset(*pixels["train"], spec, training=True, augment=recipe.data.augment, flip=flip,
                                  seed=recipe.data.seed, **common),
            "val": make_dataset(*pixels["val"], spec, training=False, **common),
            "bn": make_dataset(*pixels["train"], spec, training=False, **common)}


def _run_phase(model, phase: Phase, backbone, run: RunDir, recipe: Recipe, state: TrainState, datasets: dict,
               callbacks: list, distribution, log, *, resume: bool) -> None:
    """Compile ``model`` for ``phase`` (what trains, which learning rate), restore a checkpoint, fit its epochs."""
    with distribution.scope():
        trainable = apply_phase(model, phase, backbone)
        # The legacy (OptimizerV2) Adam applies one fused op per variable: on a CPU it traces in half the time
        # and steps about twice as fast as the new optimizer for models this small (tools/bench_train_digits.py).
        model.compile(optimizer=keras.optimizers.legacy.Adam(phase.schedule),
                      loss=keras.losses.CategoricalCrossentropy(label_smoothing=recipe.train.label_smoothing),
                      metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")])
        if resume and state.last:
            # Within a phase the optimizer continues (its step counter drives the schedule); a new phase starts a
            # fresh one from the weights. Adam's slots are created, and restored, by the first step.
            same_phase = state.epoch > phase.start
            restore_weights(run.checkpoints, state.last, model, model.optimizer if same_phase else None)
    if phase.name is not None:
        state.wait = 0  # a new regime: the validation loss often rises for an epoch when the backbone thaws
        log(f"{phase.describe()}: {trainable:,} trainable weights")
    checkpointer = next(cb for cb in callbacks if isinstance(cb, Checkpointer))
    checkpointer.learning_rate, checkpointer.phase = phase.schedule, phase.name
    weights = {int(k): v for k, v in (recipe.run.get("class_weights") or {}).items()} or None
    model.fit(datasets["train"], validation_data=datasets["val"], epochs=phase.end, initial_epoch=state.epoch,
              callbacks=callbacks, class_weight=weights, verbose=0)


def _finish(run: RunDir, recipe: Recipe, spec, val: tuple, state: TrainState, seconds: float, log,
            phases: list[Phase]) -> None:
    """Best epoch's weights into a fresh float32 model (no optimizer, no mixed-precision policy), then artifacts."""
    model_cfg = recipe.model
    final, _ = _build(model_cfg, recipe.run["num_classes"])
    restore_weights(run.checkpoints, state.best, final)
    best = next(row for row in state.history if row["epoch"] == state.best_epoch)
    verdict = validation_verdict(final, val, spec, recipe.run["labels"])
    write_json(run.history, {"epochs": state.history, "best_epoch": state.best_epoch,
                             "best_val_accuracy": best.get("val_accuracy"), "best_val_loss": best.get("val_loss"),
                             "stopped_early": state.stopped_early, "train_seconds_this_session": round(seconds, 2),
                             "degenerate": verdict.to_dict(),
                             **({"transfer": {"weights": model_cfg.weights, "phases": [ph.to_dict() for ph in phases]}}
                                if model_cfg.weights else {})})
    plot_curves(state.history, run.curves_png, best_epoch=state.best_epoch,
                title=f"{model_cfg.architecture} {model_cfg.size}px")
    save_keras_model(final, run.float_model)
    log(f"best epoch {state.best_epoch}: val_accuracy {best.get('val_accuracy', float('nan')):.4f}; "
        f"wrote {run.float_model} ({seconds:.1f}s of training)")
    if verdict.message():
        log(f"warning: {verdict.message()}")


def validation_verdict(model, val: tuple, spec, labels: list[str]):
    """The degenerate-model verdict of ``model`` (inference mode) on the decoded validation images."""
    pixels, y_true = val
    scores = model.predict(normalize(pixels, spec), batch_size=256, verbose=0)
    return check_predictions(y_true, np.asarray(scores).argmax(axis=1), labels, split="validation")


def _build(model_cfg: ModelSettings, num_classes: int):
    """(model, backbone layer names): names only for a model that starts from pretrained weights."""
    if model_cfg.weights:
        return build_pretrained(model_cfg.weights, model_cfg.architecture, num_classes=num_classes,
                                size=model_cfg.size, channels=model_cfg.channels, alpha=model_cfg.alpha,
                                dropout=model_cfg.dropout)
    return build_model(model_cfg.architecture, num_classes=num_classes, size=model_cfg.size,
                       channels=model_cfg.channels, alpha=model_cfg.alpha, depth=model_cfg.depth,
                       dropout=model_cfg.dropout), None


def _strategy(strategy):
    if strategy is None or strategy == "default":
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    raise RecipeError(f"unknown strategy {strategy!r}; use default or mirrored")


@contextlib.contextmanager
def _precision(mixed: bool, log):
    """mixed_float16 for the block (float32 variables, float16 compute); float32 again afterwards."""
    if not mixed:
        yield
        return
    if not tf.config.list_physical_devices("GPU"):
        log("warning: --mixed-precision without a GPU is slower, not faster; it is meant for GPUs")
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def _describe(model, recipe, pixels, distribution, mixed_precision, state, log) -> None:
    params, macs = model_stats(model)
    gpus = tf.config.list_physical_devices("GPU")
    where = f"{len(gpus)} GPU(s)" if gpus else "CPU"
    if distribution.num_replicas_in_sync > 1:
        where += f", {distribution.num_replicas_in_sync} replicas ({type(distribution).__name__})"
    if mixed_precision:
        where += ", mixed_float16"
    m = recipe.model
    sizes = {name: len(p[0]) for name, p in pixels.items()}
    start = f"; resuming after epoch {state.epoch}" if state.epoch else ""
    origin = f" from {m.weights}" if m.weights else ""
    log(f"training {m.architecture}{origin} (alpha {m.alpha:g}, {params:,} params, {macs / 1e6:.2f} MMACs) at "
        f"{m.size}x{m.size}x{m.channels} on {where}: {sizes['train']} train / {sizes['val']} val images, "
        f"{recipe.run['num_classes']} classes{start}")
