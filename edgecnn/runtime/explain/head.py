"""Find the class-activation head of a .tflite graph: feature map -> global mean -> fully connected.

Every edgecnn architecture ends ``GlobalAveragePooling2D -> Dense -> softmax``; a converter
writes that as ``MEAN`` (or ``AVERAGE_POOL_2D`` over the whole map) ``-> FULLY_CONNECTED ->
SOFTMAX``, with ``RESHAPE``, ``QUANTIZE`` or ``DEQUANTIZE`` possibly in between. For such a head
the logit of class k is ``sum_c W[k, c] * mean_xy F[x, y, c] + b[k]``, so ``sum_c W[k, c] F[x, y, c]``
is the class's evidence at each place (Zhou et al. 2016, "Learning Deep Features for
Discriminative Localization").
"""

from __future__ import annotations

import dataclasses

from edgecnn.tflite.inspect import ModelInfo

# Ops that pass values through without mixing places or channels.
_PASS_THROUGH = ("RESHAPE", "QUANTIZE", "DEQUANTIZE", "SOFTMAX", "SQUEEZE")
_POOLS = ("MEAN", "AVERAGE_POOL_2D")


@dataclasses.dataclass(frozen=True)
class CamHead:
    features: int  # tensor index of the final feature map (1, H, W, C)
    weights: int  # tensor index of the dense weights (classes, C)
    pool_op: str


def find_cam_head(info: ModelInfo) -> tuple[CamHead | None, str]:
    """(the head, "") or (None, why this graph has none) for the model's only output."""
    graph = info.main
    if len(graph.outputs) != 1:
        return None, f"the model has {len(graph.outputs)} outputs, not one score output"
    producers = {t: op for op in graph.operators for t in op.outputs}
    dense = _skip_back(producers, graph.outputs[0])
    if dense is None or dense.name != "FULLY_CONNECTED":
        return None, f"its output is not made by a dense layer (found {dense.name if dense else 'no op'})"
    pool = _skip_back(producers, dense.inputs[0])
    if pool is None or pool.name not in _POOLS:
        return None, f"its dense layer does not read a global pooling (found {pool.name if pool else 'no op'})"
    features = graph.tensor(pool.inputs[0])
    weights = graph.tensor(dense.inputs[1])
    source = producers.get(dense.inputs[1])
    if weights is not None and not weights.constant and source is not None and source.name == "DEQUANTIZE":
        weights = graph.tensor(source.inputs[0])  # fp16 exports keep float16 weights behind a DEQUANTIZE
    if features is None or len(features.shape) != 4 or weights is None or not weights.constant:
        return None, "its pooling does not read a 4-D feature map, or the dense weights are not constant"
    if len(weights.shape) != 2 or weights.shape[1] != features.shape[3]:
        return None, f"dense weights {weights.shape} do not match the feature map's {features.shape[3]} channels"
    return CamHead(features=features.index, weights=weights.index, pool_op=pool.name), ""


def _skip_back(producers: dict, tensor: int):
    """The first op at or before ``tensor``'s producer that is not a pass-through op."""
    op = producers.get(tensor)
    while op is not None and op.name in _PASS_THROUGH:
        op = producers.get(op.inputs[0])
    return op
