"""What a stage works from: a run directory's model (float, pruned or QAT) and what it expects.

Prune, QAT and export all need the same three answers about a run: which Keras file to load,
the input it expects (size, channel order, normalization: an ``InputSpec``) and its labels.
They come from the run's ``recipe.yaml`` and ``labels.txt``, written by ``edgecnn train``.
"""

from __future__ import annotations

from edgecnn.errors import RunDirError
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import InputSpec


def open_run(path) -> RunDir:
    """A RunDir that exists and has been trained, or a one-line error saying how to make one."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise RunDirError(f"run directory {run.path} does not exist; create it with 'edgecnn train DATA --out {run.path}'")
    if not run.recipe.is_file():
        raise RunDirError(f"{run.path} is not an edgecnn run (no recipe.yaml); pass a run made by 'edgecnn train' "
                          "or a .keras file")
    run.require(run.float_model, f"edgecnn train DATA --out {run.path}")
    return run


def input_spec(recipe: dict) -> InputSpec:
    """The model input a run's recipe describes (size, channels, channel order, mean/std, resize)."""
    model = recipe.get("model", {})
    inputs = recipe.get("input", {})
    size = int(model.get("size", 96))
    channels = int(model.get("channels", 3))
    order = inputs.get("channel_order") or ("GRAY" if channels == 1 else "RGB")
    return InputSpec(height=size, width=size, channels=channels, channel_order=order,
                     mean=tuple(inputs.get("mean", (127.5,))), std=tuple(inputs.get("std", (127.5,))),
                     resize=inputs.get("resize", "area"))


def model_name(recipe: dict, fallback: str = "") -> str:
    return str(recipe.get("model", {}).get("architecture") or recipe.get("name") or fallback)


def batch_size(recipe: dict, default: int = 32) -> int:
    return int(recipe.get("train", {}).get("batch_size", default))


def train_learning_rate(recipe: dict, default: float = 0.002) -> float:
    return float(recipe.get("train", {}).get("lr", default))
