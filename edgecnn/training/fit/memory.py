"""Will a training run fit in memory? An estimate before any image is decoded, and a refusal with the figures.

Sizes are bounded (``model_sizes.MAX_SIZE``), but batch size x size x channels x model can still ask
for more memory than the machine has; the process then dies in numpy or TensorFlow with a traceback
(or is killed by the kernel) after minutes of decoding. ``check_fits`` adds up, before decoding:

- activations: the built model's layer output shapes x batch size x 4 bytes (float32), twice: the
  forward activations kept for backpropagation and their gradients;
- weights: parameters x 4 bytes x 4 (weights, gradients, Adam's two moments);
- decoded images: images x height x width x channels bytes (uint8), three times: decoding's array,
  the copy without unreadable images and the train/val/test copies (later: the splits and the copy
  ``tf.data.Dataset.from_tensor_slices`` holds).

The estimate leaves out TensorFlow's own footprint (about 0.5 to 1 GB of libraries and allocator
arenas, a constant), so it is compared with what the measurement adds above a tiny run: see
``tests/training/fit/test_memory.py`` and docs/training.md for the factor measured.

Available memory: Linux's MemAvailable (/proc/meminfo), lowered to the cgroup's limit minus its
usage where one is set (containers); ``EDGECNN_MEMORY_AVAILABLE`` (bytes) pretends a smaller machine,
as the tests do. Where neither /proc/meminfo nor psutil exists, nothing is checked.
"""

from __future__ import annotations

import dataclasses
import math
import os

from edgecnn.errors import DataError
from edgecnn.recipe import Recipe
from edgecnn.training.models import build_model

ENV_AVAILABLE = "EDGECNN_MEMORY_AVAILABLE"
FLOAT_BYTES = 4
ACTIVATION_COPIES = 2  # forward activations kept for the backward pass, and their gradients
WEIGHT_COPIES = 4  # weights, gradients, Adam's m and v
IMAGE_COPIES = 3  # decoding's array, its filtered copy and the split copies; later the splits and tf.data's copy


@dataclasses.dataclass(frozen=True)
class Estimate:
    activations: int
    weights: int
    images: int

    @property
    def total(self) -> int:
        return self.activations + self.weights + self.images


def estimate(model, batch_size: int, images: int, height: int, width: int, channels: int) -> Estimate:
    """Bytes one training run holds at its peak, from the built ``model``'s layer output shapes."""
    per_example = sum(_values(shape) for layer in model.layers for shape in _output_shapes(layer))
    return Estimate(activations=per_example * batch_size * FLOAT_BYTES * ACTIVATION_COPIES,
                    weights=int(model.count_params()) * FLOAT_BYTES * WEIGHT_COPIES,
                    images=images * height * width * channels * IMAGE_COPIES)


def _output_shapes(layer) -> list:
    shape = layer.output_shape
    return shape if isinstance(shape, list) else [shape]


def _values(shape) -> int:
    """Values per example of one output shape (batch dimension dropped)."""
    dims = [d for d in tuple(shape)[1:] if d is not None]
    return math.prod(dims) if dims else 0


def available_bytes() -> int | None:
    """Memory the run may use now: EDGECNN_MEMORY_AVAILABLE if set, else MemAvailable (capped by the cgroup)."""
    forced = os.environ.get(ENV_AVAILABLE)
    if forced:
        try:
            return int(forced)
        except ValueError:
            raise DataError(f"{ENV_AVAILABLE} must be a number of bytes, got {forced!r}") from None
    found = [value for value in (_meminfo_available(), _cgroup_headroom()) if value is not None]
    return min(found) if found else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional (the device extra): macOS and others without /proc
    except ImportError:
        return None
    return int(psutil.virtual_memory().available)


def _cgroup_headroom() -> int | None:
    try:
        with open("/sys/fs/cgroup/memory.max", encoding="ascii") as f:
            limit = f.read().strip()
        with open("/sys/fs/cgroup/memory.current", encoding="ascii") as f:
            used = int(f.read().strip())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else max(0, int(limit) - used)


def check_fits(recipe: Recipe, num_classes: int, images: int, *, build=None) -> Estimate:
    """Raise a one-line DataError when the estimate exceeds the available memory, naming both figures."""
    cfg = recipe.model
    build = build or build_model
    model = build(cfg.architecture, num_classes=num_classes, size=cfg.size, channels=cfg.channels,
                  alpha=cfg.alpha, depth=cfg.depth, dropout=cfg.dropout)
    found = estimate(model, recipe.train.batch_size, images, cfg.size, cfg.size, cfg.channels)
    free = available_bytes()
    if free is not None and found.total > free:
        raise DataError(
            f"training needs about {_gib(found.total)} of memory ({_gib(found.activations)} of activations at "
            f"--batch-size {recipe.train.batch_size} and --size {cfg.size}, {_gib(found.images)} for {images} decoded "
            f"images) but only {_gib(free)} is available; lower --batch-size or --size, or use fewer images")
    return found


def _gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB"
