"""Expose an intermediate tensor of a .tflite graph as an extra output, in memory (the file is untouched).

The interpreter then fills it in the same invoke that gives the scores, with the delegate's fused
kernels kept. Reading the tensor of an unmodified graph would need ``experimental_preserve_all_tensors``,
which turns off XNNPACK here and reads zeros for fused tensors. Existing outputs keep their places:
the new ones are appended, so the score output stays first.
"""

from __future__ import annotations


def with_extra_outputs(data: bytes, tensor_indices) -> bytes:
    """The model bytes with ``tensor_indices`` (of the main subgraph) appended to its outputs."""
    # Inside, as in ``flatbuffer.parse_model``: a tflite_runtime-only install has no flatbuffer tools.
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    outputs = list(model.subgraphs[0].outputs)
    model.subgraphs[0].outputs = outputs + [int(t) for t in tensor_indices if int(t) not in outputs]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
