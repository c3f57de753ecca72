"""What a stage works from: a run directory's model (float, pruned or QAT) and what it expects.

Prune, QAT and export all need the same answers about a run: which Keras file to load, the
input it expects (size, channel order, normalization: an ``InputSpec``), its labels and the
fine-tune settings. They come from the run's typed recipe (``RunDir.load_recipe()``, whose
missing keys take ``edgecnn.recipe``'s defaults) and ``labels.txt``, written by ``edgecnn train``.
"""

from __future__ import annotations

import dataclasses

from edgecnn.recipe import Recipe
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import InputSpec


def open_run(path) -> RunDir:
    """A RunDir that exists and has been trained, or a one-line error saying how to make one."""
    run = RunDir(path).require_run()
    run.require(run.float_model, f"edgecnn train DATA --out {run.path}")
    return run


def input_spec(recipe: Recipe) -> InputSpec:
    """The model input a run's recipe describes (size, channels, channel order, mean/std, resize)."""
    model, inputs = recipe.model, recipe.input
    return InputSpec(height=model.size, width=model.size, channels=model.channels,
                     channel_order=inputs.channel_order, mean=tuple(inputs.mean), std=tuple(inputs.std),
                     resize=inputs.resize)


def model_name(recipe: Recipe, fallback: str = "") -> str:
    return str(recipe.model.architecture or recipe.name or fallback)


@dataclasses.dataclass(frozen=True)
class FineTune:
    """Epochs, batch size and learning rate of a fine-tune stage (prune, QAT)."""

    epochs: int
    batch_size: int
    learning_rate: float


def fine_tune(recipe: Recipe, stage: str, *, lr_factor: float, epochs: int | None = None,
              batch_size: int | None = None, learning_rate: float | None = None) -> FineTune:
    """The options given, else the recipe's ``<stage>.epochs``, ``train.batch_size`` and ``train.lr * lr_factor``."""
    return FineTune(epochs=int(epochs if epochs is not None else getattr(recipe, stage).epochs),
                    batch_size=int(batch_size or recipe.train.batch_size),
                    learning_rate=float(learning_rate or recipe.train.lr * lr_factor))
