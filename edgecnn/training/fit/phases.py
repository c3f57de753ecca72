"""The two phases of transfer learning: warm up the new head on a frozen backbone, then fine-tune everything.

Why two phases: the head starts random, so its first gradients are large and meaningless; flowing
back into a pretrained backbone they would wreck the features we came for. Training the head
alone first (backbone frozen) gives it sensible weights; then the whole model is fine-tuned at a
lower learning rate, so the backbone moves only a little.

BatchNormalization: in tf_keras ``layer.trainable = False`` on a BatchNormalization layer also makes
it run in inference mode (moving statistics, no updates). ``freeze_backbone`` freezes them with the
rest; ``unfreeze`` keeps them frozen by default, as Keras's transfer-learning guide advises: a few
hundred small-batch steps would replace the ImageNet statistics with noisy ones (keras.applications'
BN momentum is 0.99/0.999, so they would not even settle), and the fine-tuned convolutions expect
the statistics they were trained with.

Changes to ``trainable`` take effect when the model is compiled: compile after each call.
"""

from __future__ import annotations

import dataclasses
import math

from edgecnn.errors import RecipeError
from edgecnn.training.keras_compat import keras

WARMUP = "warmup"
FINETUNE = "finetune"

# Optimizer steps that train a new softmax head on frozen features with Adam at the usual learning rate
# (1e-3): it is a linear classifier, and a few hundred steps fit it whatever the dataset's size. Counted in
# steps, not epochs: on a small folder an epoch is 3 steps, on a large one 3000, so "2 epochs" would be far
# too little for one and a waste for the other.
WARMUP_STEPS = 300
# The warm-up never takes more than this share of the epochs: most of the budget is for fine-tuning.
MAX_WARMUP_FRACTION = 0.25
# Fine-tuning a pretrained backbone at a tenth of the head's learning rate moves its features a little, not away.
FINETUNE_LR_FACTOR = 0.1


def freeze_backbone(model, names) -> int:
    """Freeze the layers in ``names`` (BatchNorm then runs in inference mode); the others stay trainable.

    Returns the number of trainable weights left (the head's), for the training log.
    """
    chosen = set(names)
    unknown = chosen - {layer.name for layer in model.layers}
    if unknown:
        raise ValueError(f"freeze_backbone: the model has no layer(s) {', '.join(sorted(unknown))}")
    for layer in model.layers:
        layer.trainable = layer.name not in chosen
    return _trainable_count(model)


def unfreeze(model, *, keep_batchnorm_frozen: bool = True) -> int:
    """Make every layer trainable, except BatchNormalization when ``keep_batchnorm_frozen`` (module docstring).

    Returns the number of trainable weights.
    """
    model.trainable = True
    for layer in model.layers:
        frozen = keep_batchnorm_frozen and isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = not frozen
    return _trainable_count(model)


def _trainable_count(model) -> int:
    return int(sum(int(keras.backend.count_params(w)) for w in model.trainable_weights))


@dataclasses.dataclass(frozen=True)
class TransferPlan:
    """How ``epochs`` of ``steps_per_epoch`` steps split into warm-up and fine-tuning."""

    epochs: int
    steps_per_epoch: int
    warmup_epochs: int
    learning_rate: float  # the head's, during warm-up
    finetune_lr_factor: float = FINETUNE_LR_FACTOR

    @property
    def warmup_steps(self) -> int:
        return self.warmup_epochs * self.steps_per_epoch

    @property
    def finetune_epochs(self) -> int:
        return self.epochs - self.warmup_epochs

    @property
    def finetune_steps(self) -> int:
        return self.finetune_epochs * self.steps_per_epoch

    @property
    def finetune_lr(self) -> float:
        return self.learning_rate * self.finetune_lr_factor

    def phase_of(self, epoch: int) -> str:
        """The phase of 1-based ``epoch`` (what history.json records per epoch)."""
        return WARMUP if epoch <= self.warmup_epochs else FINETUNE

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "steps_per_epoch": self.steps_per_epoch,
                "warmup_epochs": self.warmup_epochs, "warmup_steps": self.warmup_steps,
                "finetune_epochs": self.finetune_epochs, "finetune_steps": self.finetune_steps,
                "learning_rate": self.learning_rate, "finetune_lr": self.finetune_lr}


def plan_transfer(epochs: int, steps_per_epoch: int, learning_rate: float, *,
                  warmup_steps: int = WARMUP_STEPS, finetune_lr_factor: float = FINETUNE_LR_FACTOR) -> TransferPlan:
    """Enough whole epochs to reach ``warmup_steps`` head steps, at most ``MAX_WARMUP_FRACTION`` of ``epochs``
    and at least one; one epoch in all is warm-up only (the head trained, the backbone untouched)."""
    if not isinstance(epochs, int) or epochs < 1:
        raise RecipeError(f"--epochs must be at least 1, got {epochs!r}")
    if not isinstance(steps_per_epoch, int) or steps_per_epoch < 1:
        raise RecipeError(f"an epoch needs at least 1 step, got {steps_per_epoch!r}; add images or lower --batch-size")
    if not 0.0 < finetune_lr_factor <= 1.0:
        raise RecipeError(f"the fine-tune learning-rate factor must be in (0, 1], got {finetune_lr_factor}")
    wanted = math.ceil(warmup_steps / steps_per_epoch)
    cap = max(1, math.floor(epochs * MAX_WARMUP_FRACTION))
    warmup = min(epochs, max(1, min(wanted, cap)))
    return TransferPlan(epochs, steps_per_epoch, warmup, float(learning_rate), float(finetune_lr_factor))


# --- the phases ``fitting.fit_model`` runs -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Phase:
    """Epochs ``start`` (completed before it) to ``end`` of one optimizer and one set of trainable layers."""

    name: str | None  # None: training from scratch (one phase, everything trains); WARMUP; FINETUNE
    start: int
    end: int
    steps_per_epoch: int
    learning_rate: float
    schedule: object  # the tf_keras LearningRateSchedule its Adam follows

    def describe(self) -> str:
        what = ("the new head only, on the frozen backbone" if self.name == WARMUP
                else "the whole model except BatchNorm (ImageNet or source statistics kept)")
        decay = " with cosine decay" if self.name == FINETUNE else ""
        return (f"{self.name}: epochs {self.start + 1}-{self.end} ({(self.end - self.start) * self.steps_per_epoch} "
                f"steps), {what}, lr {self.learning_rate:g}{decay}")

    def to_dict(self) -> dict:
        return {"phase": self.name, "first_epoch": self.start + 1, "last_epoch": self.end,
                "steps": (self.end - self.start) * self.steps_per_epoch, "learning_rate": self.learning_rate}


def plan_phases(epochs: int, steps_per_epoch: int, learning_rate: float, backbone) -> list[Phase]:
    """One phase from scratch (``backbone`` None), or warm-up then fine-tune (``plan_transfer``)."""
    schedules = keras.optimizers.schedules
    if backbone is None:
        cosine = schedules.CosineDecay(learning_rate, decay_steps=steps_per_epoch * epochs)
        return [Phase(None, 0, epochs, steps_per_epoch, learning_rate, cosine)]
    plan = plan_transfer(epochs, steps_per_epoch, learning_rate)
    constant = schedules.ExponentialDecay(plan.learning_rate, decay_steps=1, decay_rate=1.0)
    phases = [Phase(WARMUP, 0, plan.warmup_epochs, steps_per_epoch, plan.learning_rate, constant)]
    if plan.finetune_epochs:
        cosine = schedules.CosineDecay(plan.finetune_lr, decay_steps=plan.finetune_steps)
        phases.append(Phase(FINETUNE, plan.warmup_epochs, plan.epochs, steps_per_epoch, plan.finetune_lr, cosine))
    return phases


def apply_phase(model, phase: Phase, backbone) -> int:
    """Set what trains in ``phase``; returns the trainable weight count. Compile afterwards."""
    if phase.name == WARMUP:
        return freeze_backbone(model, backbone)
    if phase.name == FINETUNE:
        return unfreeze(model)
    return _trainable_count(model)
