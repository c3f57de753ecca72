"""Will the LiteRT GPU delegate run every op of this .tflite? A static check, without TensorFlow.

The rules follow LiteRT's own ``tensorflow/lite/tools/versioning/gpu_compatibility.cc`` (the
code the GPU delegate calls to decide which nodes it takes). TensorFlow's
``tf.lite.experimental.Analyzer(gpu_compatibility=True)`` is meant to run it, but in TF 2.21
it reported ARG_MAX, TOPK_V2 and int32 CAST/MUL graphs as compatible, so edgecnn checks the
graph itself. What is checked:
- every operator is one the delegate implements (``GPU_OPS``; custom ops only its own four),
- fused activations are NONE, RELU, RELU_N1_TO_1, RELU6 or TANH,
- per-op conditions: depthwise multiplier 1 (or 1 input channel), softmax beta 1, CAST only
  bool -> float, STRIDED_SLICE without ellipsis/new-axis/shrink masks, default fully-connected
  weights, constant int32 axes for MEAN/SUM/REDUCE_*, constant 3x2 or 4x2 paddings for PAD,
- computation happens in float32/float16, or on quantized int8/uint8 tensors (the delegate
  dequantizes them; measured: full-int8 exports run fully on LiteRT 2.3's accelerator, so the
  int8 exclusion edgecnn had was wrong); unquantized integer tensors other than constant
  parameters are refused, and shapes are static.
Unsupported ops would fall back to the CPU, splitting the graph (costly copies), so an export
for ``--target gpu`` must have none. Runtime limits (GPU memory, driver bugs) cannot be checked
statically; ``edgecnn profile --delegate gpu`` on the device is the final word.
"""

from __future__ import annotations

import dataclasses

from edgecnn.tflite.inspect import ModelInfo, OpInfo

GPU_OPS = frozenset({
    "ABS", "ADD", "AVERAGE_POOL_2D", "BATCH_MATMUL", "CAST", "CONCATENATION", "CONV_2D", "COS", "DENSIFY",
    "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE", "DIV", "ELU", "EQUAL", "EXP", "FLOOR", "FLOOR_DIV",
    "FLOOR_MOD", "FULLY_CONNECTED", "GREATER", "GREATER_EQUAL", "HARD_SWISH", "LEAKY_RELU", "LESS", "LESS_EQUAL",
    "LOG", "LOGISTIC", "LSTM", "MAXIMUM", "MAX_POOL_2D", "MEAN", "MINIMUM", "MIRROR_PAD", "MUL", "NEG",
    "NOT_EQUAL", "PACK", "PAD", "POW", "PRELU", "QUANTIZE", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "RELU",
    "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR", "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SIN", "SLICE",
    "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT", "SPLIT_V", "SQRT", "SQUARE", "SQUARED_DIFFERENCE", "STRIDED_SLICE", "SUB",
    "SUM", "TANH", "TILE", "TRANSPOSE", "TRANSPOSE_CONV",
})
GPU_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"})
GPU_ACTIVATIONS = frozenset({"NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH"})
_FLOAT = ("float32", "float16")
_QUANTIZED = ("int8", "uint8")


@dataclasses.dataclass
class GpuReport:
    compatible: bool
    unsupported_ops: list[dict]  # {"index", "op", "reason"}
    problems: list[str]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def check_model(info: ModelInfo) -> GpuReport:
    sub = info.main
    problems = []
    if any(t.dynamic for t in sub.tensors):
        problems.append("the model has dynamic tensor shapes; the GPU delegate needs static shapes")
    unsupported = []
    for op in sub.operators:
        reason = _reason(op, info)
        if reason:
            unsupported.append({"index": op.index, "op": op.name, "reason": reason})
    return GpuReport(not problems and not unsupported, unsupported, problems)


def _reason(op: OpInfo, info: ModelInfo) -> str | None:
    sub = info.main
    if op.custom:
        return None if op.name in GPU_CUSTOM_OPS else f"custom op {op.name} is not a GPU delegate op"
    if op.name not in GPU_OPS:
        return f"{op.name} is not implemented by the GPU delegate"
    activation = op.options.get("fusedActivationFunction", "NONE")
    if activation not in GPU_ACTIVATIONS:
        return f"fused activation {activation} is not supported"
    tensors = [sub.tensor(i) for i in (*op.inputs, *op.outputs) if i >= 0]
    if op.name not in ("QUANTIZE", "DEQUANTIZE", "CAST"):
        for tensor in tensors:
            if tensor is not None and not tensor.constant and not _gpu_dtype(tensor):
                return (f"computes on {tensor.dtype} tensor {tensor.name!r}; the GPU delegate computes in float "
                        "(quantized int8/uint8 tensors are dequantized for it)")
    check = _CHECKS.get(op.name)
    return check(op, sub) if check else None


def _gpu_dtype(tensor) -> bool:
    # Measured on LiteRT 2.3's accelerator (SwiftShader): full-int8 exports of every registered
    # architecture ran with is_fully_accelerated() True; quantized tensors are dequantized to float.
    # Unquantized integers (indices, int32 arithmetic) are still refused.
    return tensor.dtype in _FLOAT or (tensor.dtype in _QUANTIZED and tensor.scale > 0)


def _depthwise(op, sub):
    multiplier = op.options.get("depthMultiplier", 1)
    channels = sub.tensor(op.inputs[0]).shape[-1] if op.inputs else 1
    if multiplier != 1 and channels != 1:
        return f"depth multiplier {multiplier} with {channels} input channels is not supported"
    return None


def _softmax(op, sub):
    return None if op.options.get("beta", 1.0) == 1.0 else "softmax beta other than 1 is not supported"


def _cast(op, sub):
    source, target = sub.tensor(op.inputs[0]), sub.tensor(op.outputs[0])
    if source.dtype == "bool" and target.dtype in _FLOAT:
        return None
    return f"CAST from {source.dtype} to {target.dtype} is not supported (only bool to float)"


def _strided_slice(op, sub):
    if any(op.options.get(k, 0) for k in ("ellipsisMask", "newAxisMask", "shrinkAxisMask")):
        return "ellipsis, new-axis or shrink-axis masks are not supported"
    return None


def _fully_connected(op, sub):
    return None if op.options.get("weightsFormat", 0) == 0 else "only the default weights format is supported"


def _constant_axes(op, sub):
    axes = sub.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
    if axes is None or not axes.constant or axes.dtype != "int32":
        return "axes must be a constant int32 tensor"
    return None


def _pad(op, sub):
    paddings = sub.tensor(op.inputs[1]) if len(op.inputs) > 1 else None
    if paddings is None or not paddings.constant or paddings.shape not in ([3, 2], [4, 2]):
        return "paddings must be a constant 3x2 or 4x2 tensor"
    return None


_CHECKS = {
    "DEPTHWISE_CONV_2D": _depthwise, "SOFTMAX": _softmax, "CAST": _cast, "STRIDED_SLICE": _strided_slice,
    "FULLY_CONNECTED": _fully_connected, "MEAN": _constant_axes, "SUM": _constant_axes,
    "REDUCE_MAX": _constant_axes, "REDUCE_MIN": _constant_axes, "REDUCE_PROD": _constant_axes,
    "PAD": _pad, "MIRROR_PAD": _pad,
}


def format_report(report: GpuReport) -> str:
    if report.compatible:
        return "GPU delegate: every operation runs on the GPU (float or quantized graph, static shapes, supported ops)"
    lines = [f"GPU delegate: {len(report.unsupported_ops)} operation(s) would fall back to the CPU"]
    lines += [f"  problem: {p}" for p in report.problems]
    lines += [f"  #{u['index']} {u['op']}: {u['reason']}" for u in report.unsupported_ops[:10]]
    return "\n".join(lines)
