"""Will this .tflite run on a Coral Edge TPU? The check before compiling.

``check_model`` reads a ``ModelInfo`` (see ``inspect``) against the Edge TPU's documented
requirements (coral.ai/docs/edgetpu/models-intro, "Model requirements" and "Supported
operations", for compiler 16):
- tensors are 8-bit quantized (int8 or uint8; int32 only for constant biases, axes, shapes),
- tensor sizes are static (no dynamic dimensions), the batch is 1, and a tensor with more
  than 3 dimensions has only its 3 innermost dimensions larger than 1,
- every operation is in the supported table and meets its listed limitation (``SUPPORTED_OPS``),
- the compiler partitions the graph once: from the first unsupported operation onward, every
  operation runs on the CPU, even supported ones ("first unsupported op onward runs on CPU").
A float QUANTIZE at the input or DEQUANTIZE at the output (a model exported with float I/O)
runs on the CPU at the graph's edge without splitting it; it still makes the model not fully
compatible, because the CPU then converts every frame.

The compiler itself (``compiler.py``) turns its log into the same ``EdgeTpuReport`` (``report.py``).
No TensorFlow is imported here.
"""

from __future__ import annotations

from edgecnn.tflite.edgetpu.report import MAPPED, EdgeTpuReport, OpPlacement
from edgecnn.tflite.inspect import ModelInfo, OpInfo, TensorInfo

AFTER_FIRST_UNSUPPORTED = "runs on the CPU: it comes after the first unsupported operation ({first})"
UNSUPPORTED_OP = "Operation not supported by the Edge TPU"
UNSUPPORTED_TYPE = "Operation is working on an unsupported data type"
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"  # what a compiled model's Edge TPU segment is called
QUANTIZED_TYPES = ("int8", "uint8")
SOFTMAX_MAX_ELEMENTS = 16000

# The supported-operations table (TFLite op name -> its documented limitation, "" for none).
# Limitations the check enforces are marked in _LIMIT_CHECKS below; the others are reported as notes.
SUPPORTED_OPS: dict[str, str] = {
    "ADD": "",
    "AVERAGE_POOL_2D": "No fused activation function.",
    "CONCATENATION": "No fused activation function. If any input is a compile-time constant tensor, there must be "
                     "only 2 inputs, and this constant tensor must be all zeroes (effectively, a zero-padding op).",
    "CONV_2D": "Must use the same dilation in x and y dimensions.",
    "DEPTHWISE_CONV_2D": "Dilated conv kernels are not supported.",
    "EXPAND_DIMS": "",
    "FULLY_CONNECTED": "Only the default format is supported for fully-connected weights. Output tensor is "
                       "one-dimensional.",
    "L2_NORMALIZATION": "",
    "LOGISTIC": "",
    "LSTM": "Unidirectional LSTM only.",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "",
    "MAXIMUM": "",
    "MAX_POOL_2D": "No fused activation function.",
    "MEAN": "No reduction in batch dimension. Supports reduction along x- and/or y-dimensions only.",
    "MINIMUM": "",
    "MUL": "",
    "PACK": "No packing in batch dimension.",
    "PAD": "No padding in batch dimension. Supports padding along x- and/or y-dimensions only.",
    "PRELU": "Alpha needs to be constant.",
    "QUANTIZE": "",
    "REDUCE_MAX": "Cannot operate on the batch dimension.",
    "REDUCE_MIN": "Cannot operate on the batch dimension.",
    "RELU": "",
    "RELU6": "",
    "RELU_N1_TO_1": "",
    "RESHAPE": "Certain reshapes might not be mapped for large tensor sizes.",
    "RESIZE_BILINEAR": "Input/output is a 3-dimensional tensor. Depending on input/output size, this operation "
                       "may not be mapped to the Edge TPU to avoid loss in precision.",
    "RESIZE_NEAREST_NEIGHBOR": "Input/output is a 3-dimensional tensor. Depending on input/output size, this "
                               "operation may not be mapped to the Edge TPU to avoid loss in precision.",
    "RSQRT": "",
    "SLICE": "",
    "SOFTMAX": f"Supports only 1-D input tensor with a max of {SOFTMAX_MAX_ELEMENTS:,} elements.",
    "SPACE_TO_DEPTH": "",
    "SPLIT": "No splitting in batch dimension.",
    "SQUEEZE": "",
    "STRIDED_SLICE": "Supported only when all strides are equal to 1 (i.e., effectively a Stride op), and with "
                     "ellipsis-axis-mask == 0, and new-axis-max == 0.",
    "SUB": "",
    "SUM": "Cannot operate on the batch dimension.",
    "SQUARED_DIFFERENCE": "",
    "TANH": "",
    "TRANSPOSE": "",
    "TRANSPOSE_CONV": "",
}


# --- the check --------------------------------------------------------------------------------------

def check_model(info: ModelInfo) -> EdgeTpuReport:
    """Where each operation of ``info``'s main graph would run on an Edge TPU, by the documented rules."""
    sub = info.main
    problems = _model_problems(info)
    notes: list[str] = []
    placements: list[OpPlacement] = []
    first_blocking: OpInfo | None = None
    for op in sub.operators:
        reason = _op_reason(op, info, notes)
        if reason is None and first_blocking is not None:
            reason = AFTER_FIRST_UNSUPPORTED.format(first=f"#{first_blocking.index} {first_blocking.name}")
        if reason is not None and first_blocking is None and not _is_boundary_conversion(op, info):
            first_blocking = op
        placements.append(OpPlacement(op.index, op.name, reason is None, MAPPED if reason is None else reason))
    if len(info.subgraphs) > 1:
        problems.append(f"the model has {len(info.subgraphs)} subgraphs; the Edge TPU compiles only the main one")
    compatible = not problems and all(p.on_edgetpu for p in placements)
    return EdgeTpuReport(compatible, problems, placements, notes=sorted(set(notes)))


def _model_problems(info: ModelInfo) -> list[str]:
    problems = []
    for tensor in info.main.tensors:
        if tensor.dynamic:
            problems.append(f"tensor {tensor.name!r} has a dynamic shape {tensor.shape_signature}; "
                            "the Edge TPU needs sizes fixed at compile time")
            break
    for tensor in info.inputs:
        if tensor.shape and tensor.shape[0] != 1:
            problems.append(f"input {tensor.name!r} has batch {tensor.shape[0]}; the Edge TPU runs batch 1")
    for tensor in [*info.inputs, *info.outputs]:
        if tensor.dtype not in QUANTIZED_TYPES:
            problems.append(f"{'input' if tensor in info.inputs else 'output'} {tensor.name!r} is {tensor.dtype}; "
                            "the Edge TPU takes int8 or uint8 (export with --io int8 or uint8)")
    return problems


def _is_boundary_conversion(op: OpInfo, info: ModelInfo) -> bool:
    """QUANTIZE of a float graph input or DEQUANTIZE to a float graph output: CPU work at the edge."""
    sub = info.main
    if op.name == "QUANTIZE" and op.inputs and op.inputs[0] in sub.inputs:
        return sub.tensors[op.inputs[0]].dtype not in QUANTIZED_TYPES
    if op.name == "DEQUANTIZE" and op.outputs and op.outputs[0] in sub.outputs:
        return True
    return False


def _op_reason(op: OpInfo, info: ModelInfo, notes: list[str]) -> str | None:
    """None when ``op`` maps to the Edge TPU by itself, else the reason it does not."""
    if op.custom and op.name == EDGETPU_CUSTOM_OP:
        return None  # an already compiled Edge TPU segment
    if _is_boundary_conversion(op, info):
        return "float input/output conversion runs on the CPU; export with --io int8 or uint8"
    if op.name not in SUPPORTED_OPS:
        return UNSUPPORTED_OP
    sub = info.main
    for index in (*op.inputs, *op.outputs):
        tensor = sub.tensor(index)
        if tensor is None:
            continue
        if tensor.dtype not in QUANTIZED_TYPES and not (tensor.constant and tensor.dtype in ("int32", "int64")):
            return f"{UNSUPPORTED_TYPE} ({tensor.dtype} tensor {tensor.name!r})"
        if not tensor.constant and _too_many_dims(tensor):
            return (f"tensor {tensor.name!r} has shape {tensor.shape}: with more than 3 dimensions, only the 3 "
                    "innermost may be larger than 1")
    check = _LIMIT_CHECKS.get(op.name)
    reason = check(op, sub) if check else None
    if reason is None and SUPPORTED_OPS[op.name] and op.name not in _LIMIT_CHECKS:
        notes.append(f"{op.name}: {SUPPORTED_OPS[op.name]}")
    return reason


def _too_many_dims(tensor: TensorInfo) -> bool:
    return len(tensor.shape) > 3 and any(d > 1 for d in tensor.shape[:-3])


# --- per-op limitations ----------------------------------------------------------------------------

def _no_fused_activation(op: OpInfo, sub) -> str | None:
    activation = op.options.get("fusedActivationFunction", "NONE")
    if activation not in ("NONE", 0):
        return f"fused activation {activation} is not supported on {op.name}"
    return None


def _concatenation(op: OpInfo, sub) -> str | None:
    reason = _no_fused_activation(op, sub)
    constants = [i for i in op.inputs if sub.tensor(i) is not None and sub.tensor(i).constant]
    if reason is None and constants and len(op.inputs) != 2:
        reason = "a constant input is allowed only in a 2-input concatenation (zero padding)"
    return reason


def _conv(op: OpInfo, sub) -> str | None:
    if op.options.get("dilationWFactor", 1) != op.options.get("dilationHFactor", 1):
        return "dilation differs between x and y"
    return None


def _depthwise(op: OpInfo, sub) -> str | None:
    if op.options.get("dilationWFactor", 1) != 1 or op.options.get("dilationHFactor", 1) != 1:
        return "dilated depthwise kernels are not supported"
    return None


def _one_dimensional(tensor: TensorInfo | None) -> bool:
    return tensor is not None and sum(d > 1 for d in tensor.shape) <= 1


def _fully_connected(op: OpInfo, sub) -> str | None:
    if op.options.get("weightsFormat", 0) != 0:
        return "only the default fully-connected weights format is supported"
    if op.outputs and not _one_dimensional(sub.tensor(op.outputs[0])):
        return f"output shape {sub.tensor(op.outputs[0]).shape} is not one-dimensional"
    return None


def _softmax(op: OpInfo, sub) -> str | None:
    tensor = sub.tensor(op.inputs[0]) if op.inputs else None
    if not _one_dimensional(tensor):
        return f"input shape {tensor.shape if tensor else '?'} is not one-dimensional"
    elements = max(tensor.shape or [1])
    if elements > SOFTMAX_MAX_ELEMENTS:
        return f"{elements:,} elements; at most {SOFTMAX_MAX_ELEMENTS:,}"
    return None


def _axes(op: OpInfo, sub, position: int) -> tuple[list[int] | None, int]:
    data = sub.tensor(op.inputs[0]) if op.inputs else None
    rank = len(data.shape) if data is not None else 4
    axes = sub.tensor(op.inputs[position]) if len(op.inputs) > position else None
    if axes is None or axes.values is None:
        return None, rank
    return [a % rank if rank else a for a in axes.values], rank


def _reduce_not_batch(op: OpInfo, sub) -> str | None:
    axes, rank = _axes(op, sub, 1)
    if axes is None:
        return "reduction axes are not a compile-time constant"
    if 0 in axes and rank > 1:
        return "reduces over the batch dimension"
    return None


def _mean(op: OpInfo, sub) -> str | None:
    reason = _reduce_not_batch(op, sub)
    if reason is None:
        axes, rank = _axes(op, sub, 1)
        if rank == 4 and not set(axes) <= {1, 2}:
            reason = f"reduces over axes {axes}; only x and/or y (1, 2) are supported"
    return reason


def _pad(op: OpInfo, sub) -> str | None:
    paddings = sub.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
    if paddings is None or paddings.values is None:
        return "paddings are not a compile-time constant"
    rows = [paddings.values[i:i + 2] for i in range(0, len(paddings.values), 2)]
    if rows and any(rows[0]):
        return "pads the batch dimension"
    if len(rows) == 4 and any(rows[3]):
        return "pads the channel dimension; only x and/or y are supported"
    return None


def _strided_slice(op: OpInfo, sub) -> str | None:
    if op.options.get("ellipsisMask", 0) or op.options.get("newAxisMask", 0):
        return "ellipsis or new-axis masks are not supported"
    strides = sub.tensor(op.inputs[3]) if len(op.inputs) > 3 else None
    if strides is None or strides.values is None or any(s != 1 for s in strides.values):
        return "strides other than 1 are not supported"
    return None


def _not_batch_axis(option: str):
    def check(op: OpInfo, sub) -> str | None:
        if op.options.get(option, None) == 0:
            return f"{op.name.lower()} along the batch dimension is not supported"
        return None

    return check


def _split(op: OpInfo, sub) -> str | None:
    axis = sub.tensor(op.inputs[0]) if op.inputs else None
    if axis is not None and axis.values is not None and axis.values[0] == 0:
        return "splitting along the batch dimension is not supported"
    return None


def _prelu(op: OpInfo, sub) -> str | None:
    alpha = sub.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
    if alpha is None or not alpha.constant:
        return "alpha is not a compile-time constant"
    return None


_LIMIT_CHECKS = {
    "AVERAGE_POOL_2D": _no_fused_activation,
    "MAX_POOL_2D": _no_fused_activation,
    "CONCATENATION": _concatenation,
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "SOFTMAX": _softmax,
    "MEAN": _mean,
    "SUM": _reduce_not_batch,
    "REDUCE_MAX": _reduce_not_batch,
    "REDUCE_MIN": _reduce_not_batch,
    "PAD": _pad,
    "STRIDED_SLICE": _strided_slice,
    "PACK": _not_batch_axis("axis"),
    "SPLIT": _split,
    "PRELU": _prelu,
}
