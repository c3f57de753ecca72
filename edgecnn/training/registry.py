"""The model registry: names -> builders, timm style.

An architecture registers itself with ``@register_model(name, family=..., description=...,
**defaults)``; everything else (the CLI's ``edgecnn models``, recipes, tests) looks models up
here, so a new model is listed and tested the moment it is registered. This module imports no
TensorFlow: the builders themselves live in ``architectures.py``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from ..errors import ModelError, closest

# Downsampling adapts to the input size: a model uses as many stride-2 stages as it can
# (up to its design's maximum) while keeping the last feature map at least MIN_FINAL_PX wide.
# Fewer than MIN_STRIDES stride-2 stages is not a sensible CNN any more, hence MIN_SIZE.
MIN_FINAL_PX = 2
MIN_STRIDES = 2
MIN_SIZE = MIN_FINAL_PX * 2**MIN_STRIDES


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One registered architecture: its builder and the settings it uses unless told otherwise."""

    name: str
    family: str
    description: str
    builder: Callable
    alpha: float = 1.0
    depth: float = 1.0
    dropout: float = 0.2
    bn_momentum: float = 0.9
    max_strides: int = 5
    # Family-specific settings (e.g. MobileNetV2's head width) passed to the builder as keywords.
    extra: dict = dataclasses.field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}


def register_model(name: str, *, family: str, description: str, **defaults):
    """Decorator: register ``builder(spec, *, num_classes, size, channels, alpha, depth, dropout, bn_momentum)``."""
    known = {f.name for f in dataclasses.fields(ModelSpec)}

    def decorate(builder):
        if name in MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        settings = {k: v for k, v in defaults.items() if k in known}
        extra = {k: v for k, v in defaults.items() if k not in known}
        MODELS[name] = ModelSpec(name=name, family=family, description=description, builder=builder,
                                 extra=extra, **settings)
        return builder

    return decorate


def get_spec(name: str) -> ModelSpec:
    """The registered spec of ``name``, or a one-line error that suggests the closest name."""
    if name not in MODELS:
        from . import architectures  # noqa: F401  (registers the built-in models; imports TensorFlow)
    if name not in MODELS:
        raise ModelError(f"unknown model {name!r}{closest(name, MODELS)}; "
                         f"'edgecnn models' lists the available ones: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def count_strides(size: int, max_strides: int) -> int:
    """How many stride-2 stages fit ``size`` pixels while the last feature map stays >= MIN_FINAL_PX."""
    strides = 0
    while strides < max_strides and size // 2 ** (strides + 1) >= MIN_FINAL_PX:
        strides += 1
    return strides


def check_size(name: str, size: int, max_strides: int) -> int:
    """The number of stride-2 stages for ``size``, or a one-line error naming the minimum size."""
    if not isinstance(size, int) or isinstance(size, bool):
        raise ModelError(f"--size must be a whole number of pixels, got {size!r}")
    strides = count_strides(size, max_strides)
    if strides < MIN_STRIDES:
        raise ModelError(f"--size {size} is too small for {name}: the minimum is {MIN_SIZE} "
                         f"({MIN_STRIDES} stride-2 stages down to a {MIN_FINAL_PX}x{MIN_FINAL_PX} feature map); "
                         f"use --size {MIN_SIZE} or more")
    return strides


def check_positive(option: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ModelError(f"--{option} must be a positive number, got {value!r}")
    return float(value)
