"""The model registry: names -> builders, timm style.

An architecture registers itself with ``@register_model(name, family=..., description=...,
**defaults)``; everything else (the CLI's ``edgecnn models``, recipes, tests) looks models up
here, so a new model is listed and tested the moment it is registered. This module is a leaf: it
imports no model family and no TensorFlow. The families (``mobilenet.py``) import it and register
into it; importing the package ``edgecnn.training.models`` imports every family, as timm's
``models/__init__.py`` does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from edgecnn.errors import ModelError, closest


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
        raise ModelError(f"unknown model {name!r}{closest(name, MODELS)}; "
                         f"'edgecnn models' lists the available ones: {', '.join(sorted(MODELS))}")
    return MODELS[name]


def check_positive(option: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ModelError(f"--{option} must be a positive number, got {value!r}")
    return float(value)
