"""Measure weight sparsity: the fraction of exact zeros in each layer's kernel.

Used after ``strip_pruning`` (did pruning reach its target?), after QAT with
``--preserve-sparsity`` (did the zeros survive?) and in reports. Works on plain models and on
tfmot's QAT models, whose layers wrap the original layer and keep its kernel variable.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Weight variables that hold a layer's kernel (never biases, BatchNorm statistics or QAT ranges).
_KERNEL_SUFFIXES = ("kernel:0", "depthwise_kernel:0", "pointwise_kernel:0")


@dataclasses.dataclass
class LayerSparsity:
    layer: str
    kind: str  # the Keras class of the (unwrapped) layer: Conv2D, DepthwiseConv2D, Dense ...
    params: int
    zeros: int

    @property
    def sparsity(self) -> float:
        return self.zeros / self.params if self.params else 0.0

    def to_dict(self) -> dict:
        return {"layer": self.layer, "kind": self.kind, "params": self.params, "zeros": self.zeros,
                "sparsity": round(self.sparsity, 4)}


def kernel_sparsity(model) -> list[LayerSparsity]:
    """One entry per layer that has a kernel, in model order, with its count of exact zeros."""
    rows = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)  # tfmot wrappers (QuantizeWrapper, PruneLowMagnitude)
        kernels = [w for w in layer.weights if w.name.endswith(_KERNEL_SUFFIXES)]
        if not kernels:
            continue
        values = [np.asarray(w.numpy()) for w in kernels]
        rows.append(LayerSparsity(
            layer=inner.name,
            kind=type(inner).__name__,
            params=int(sum(v.size for v in values)),
            zeros=int(sum(np.count_nonzero(v == 0) for v in values)),
        ))
    return rows


def overall_sparsity(rows, layers=None) -> float:
    """Zeros over parameters across ``rows`` (only the named ``layers`` when given)."""
    chosen = [r for r in rows if layers is None or r.layer in layers]
    params = sum(r.params for r in chosen)
    return sum(r.zeros for r in chosen) / params if params else 0.0


def sparsity_by_layer(model) -> dict[str, float]:
    """{layer name: sparsity} for quick comparisons (e.g. before and after QAT)."""
    return {row.layer: row.sparsity for row in kernel_sparsity(model)}
