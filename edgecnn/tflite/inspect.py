"""What is inside a .tflite file: tensors, operators, metadata and size, without TensorFlow.

Reads the flatbuffer with LiteRT's own schema (``ai_edge_litert.schema_py_generated``) and
``flatbuffer_utils``, after ``flatbuffer`` has checked that it is a TFLite model at all. Works
on any .tflite: several inputs and outputs, float or quantized, with or without edgecnn metadata.

``inspect_bytes``/``inspect_file`` return a ``ModelInfo``; its ``to_dict`` is the JSON of
``edgecnn inspect --json``. The per-operator listing (with options such as fused activations and
dilation, and small constant inputs such as reduction axes) is what the Edge TPU check reads.
"""

from __future__ import annotations

import dataclasses
import struct
from collections import Counter

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.tflite.described import read_standard
from edgecnn.tflite.flatbuffer import check_tflite_bytes, parse_model, read_tflite_bytes
from edgecnn.tflite.metadata import METADATA_NAME, metadata_from_bytes, metadata_names

# Constant integer tensors up to this many values are listed with their values (axes, paddings,
# slice bounds): the Edge TPU's rules depend on them, and they are never large.
_SMALL_CONSTANT = 16
FLOAT_DTYPES = ("float32", "float16", "float64", "bfloat16")


@dataclasses.dataclass
class TensorInfo:
    index: int
    name: str
    shape: list[int]
    shape_signature: list[int]  # -1 marks a dynamic dimension
    dtype: str  # numpy name: "float32", "int8", "uint8", "int32" ...
    scale: float  # first (or only) scale; 0.0 when not quantized (the interpreter's convention)
    zero_point: int
    per_channel: bool
    constant: bool  # holds data in the file (weights, biases, axes)
    values: list | None = None  # small constant integer tensors only

    @property
    def quantization(self) -> dict:
        return {"scale": self.scale, "zero_point": self.zero_point}

    @property
    def dynamic(self) -> bool:
        return any(d < 0 for d in self.shape_signature)

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": self.shape, "dtype": self.dtype, "quantization": self.quantization}


@dataclasses.dataclass
class OpInfo:
    index: int
    name: str  # BuiltinOperator name (CONV_2D ...) or the custom op's code
    custom: bool
    inputs: list[int]  # tensor indices; -1 is an omitted optional input
    outputs: list[int]
    options: dict  # the op's builtin options, e.g. {"fusedActivationFunction": "RELU6", "dilationWFactor": 1}


@dataclasses.dataclass
class SubgraphInfo:
    name: str
    tensors: list[TensorInfo]
    operators: list[OpInfo]
    inputs: list[int]
    outputs: list[int]

    def tensor(self, index: int) -> TensorInfo | None:
        return self.tensors[index] if 0 <= index < len(self.tensors) else None


@dataclasses.dataclass
class ModelInfo:
    size_bytes: int
    subgraphs: list[SubgraphInfo]
    metadata: dict | None  # the edgecnn entry as a dict, or None
    metadata_error: str | None
    metadata_entries: dict[str, int]  # every metadata entry's name and size
    path: str = ""
    standard: dict | None = None  # the TFLITE_METADATA entry as a dict ({"error": ...} when unreadable)
    warnings: list[str] = dataclasses.field(default_factory=list)  # what classify/run would refuse or doubt

    @property
    def main(self) -> SubgraphInfo:
        return self.subgraphs[0]

    @property
    def inputs(self) -> list[TensorInfo]:
        return [self.main.tensors[i] for i in self.main.inputs]

    @property
    def outputs(self) -> list[TensorInfo]:
        return [self.main.tensors[i] for i in self.main.outputs]

    def op_histogram(self) -> dict[str, int]:
        counts = Counter(op.name for sub in self.subgraphs for op in sub.operators)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def float_tensors(self) -> list[str]:
        """Float tensors inside the main graph: everything but its own inputs and outputs.

        Empty for a full-integer model (even one with float32 input/output, whose only float
        tensors are those boundaries, fed to QUANTIZE and produced by DEQUANTIZE).
        """
        boundary = set(self.main.inputs) | set(self.main.outputs)
        used = {i for op in self.main.operators for i in (*op.inputs, *op.outputs) if i >= 0}
        return [t.name for t in self.main.tensors if t.index in used - boundary and t.dtype in FLOAT_DTYPES]

    def to_dict(self) -> dict:
        metadata = None
        if self.metadata is not None:
            metadata = dict(self.metadata)
        elif self.metadata_error:
            metadata = {"error": self.metadata_error}
        return {
            "path": self.path,
            "size_bytes": self.size_bytes,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "ops": self.op_histogram(),
            "num_operators": sum(len(s.operators) for s in self.subgraphs),
            "subgraphs": len(self.subgraphs),
            "float_tensors": self.float_tensors(),
            "metadata": metadata,
            "metadata_entries": self.metadata_entries,
            "standard_metadata": self.standard,
            "warnings": self.warnings,
        }


def inspect_file(path) -> ModelInfo:
    """Inspect a .tflite file (checked to be a TFLite flatbuffer first)."""
    data = read_tflite_bytes(path)
    info = inspect_bytes(data, name=str(path), checked=True)
    info.path = str(path)
    return info


def inspect_bytes(data: bytes, name: str = "model", *, checked: bool = False) -> ModelInfo:
    if not checked:
        check_tflite_bytes(data, name)
    model = parse_model(data)
    try:
        subgraphs = [_subgraph(model, model.Subgraphs(i), data) for i in range(model.SubgraphsLength())]
        entries = metadata_names(data)
    except (IndexError, ValueError, TypeError, struct.error) as exc:
        # flatbuffer's check touches only the top of the structure; offsets deeper in a
        # truncated file point past its end.
        raise ModelError(f"{name} is a corrupt or truncated TFLite file ({type(exc).__name__} while reading its "
                         "graph); re-export or re-copy it") from None
    metadata, error = None, None
    try:
        md = metadata_from_bytes(data, name=name)
        metadata = None if md is None else dataclasses.asdict(md)
    except ModelError as exc:
        error = str(exc)
    info = ModelInfo(size_bytes=len(data), subgraphs=subgraphs, metadata=metadata, metadata_error=error,
                     metadata_entries=entries, standard=_standard_dict(data, name))
    info.warnings = label_warnings(info, name)
    return info


def label_warnings(info: ModelInfo, name) -> list[str]:
    """A warning when the edgecnn entry names a different number of classes than the output has scores.

    ``classify`` and ``run`` refuse such a model (runtime/classifier.py); inspect shows it and says so."""
    labels = (info.metadata or {}).get("labels")
    if not labels or len(info.outputs) != 1:
        return []
    scores = int(np.prod(info.outputs[0].shape[1:]))
    if len(labels) == scores:
        return []
    return [f"{name}'s edgecnn metadata names {len(labels)} labels but its output has {scores} scores: classify "
            f"and run will refuse it; re-export the model, or give them a labels file with {scores} lines (--labels)"]


def _standard_dict(data: bytes, name) -> dict | None:
    try:
        found = read_standard(data, name=name)
    except ModelError as exc:
        return {"error": str(exc)}
    return None if found is None else dataclasses.asdict(found)


# --- flatbuffer readers -------------------------------------------------------------------------

def _subgraph(model, sub, data: bytes) -> SubgraphInfo:
    tensors = [_tensor(model, sub.Tensors(i), i, data) for i in range(sub.TensorsLength())]
    operators = [_operator(model, sub.Operators(i), i) for i in range(sub.OperatorsLength())]
    name = (sub.Name() or b"").decode("utf-8", "replace")
    return SubgraphInfo(name, tensors, operators, list(sub.InputsAsNumpy()) if sub.InputsLength() else [],
                        list(sub.OutputsAsNumpy()) if sub.OutputsLength() else [])


def _tensor(model, tensor, index: int, data: bytes) -> TensorInfo:
    from ai_edge_litert.tools import flatbuffer_utils

    shape = [int(d) for d in tensor.ShapeAsNumpy()] if tensor.ShapeLength() else []
    signature = [int(d) for d in tensor.ShapeSignatureAsNumpy()] if tensor.ShapeSignatureLength() else list(shape)
    dtype = flatbuffer_utils.type_to_name(tensor.Type()).lower()
    scale, zero_point, per_channel = 0.0, 0, False
    quant = tensor.Quantization()
    if quant is not None and quant.ScaleLength():
        scale = float(quant.Scale(0))
        zero_point = int(quant.ZeroPoint(0)) if quant.ZeroPointLength() else 0
        per_channel = quant.ScaleLength() > 1
    blob = _buffer_bytes(model, tensor.Buffer(), data)
    values = None
    if blob and dtype in ("int32", "int64") and len(blob) // np.dtype(dtype).itemsize <= _SMALL_CONSTANT:
        values = np.frombuffer(blob, dtype=np.dtype(dtype).newbyteorder("<")).tolist()
    name = (tensor.Name() or b"").decode("utf-8", "replace")
    return TensorInfo(index, name, shape, signature, dtype, scale, zero_point, per_channel, bool(blob), values)


def _buffer_bytes(model, buffer_index: int, data: bytes) -> bytes:
    if buffer_index <= 0 or buffer_index >= model.BuffersLength():
        return b""
    buffer = model.Buffers(buffer_index)
    if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer
        return bytes(data[buffer.Offset(): buffer.Offset() + buffer.Size()])
    return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""


def _operator(model, op, index: int) -> OpInfo:
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    opcode = model.OperatorCodes(op.OpcodeIndex())
    code = flatbuffer_utils.get_builtin_code_from_operator_code(opcode)
    custom = code == schema.BuiltinOperator.CUSTOM
    name = (opcode.CustomCode() or b"custom").decode("utf-8", "replace") if custom else _OP_NAMES.get(code, f"OP_{code}")
    return OpInfo(index, name, custom,
                  [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else [],
                  [int(i) for i in op.OutputsAsNumpy()] if op.OutputsLength() else [],
                  _options(op))


def _options(op) -> dict:
    from ai_edge_litert import schema_py_generated as schema

    kind = op.BuiltinOptionsType()
    if not kind or op.BuiltinOptions() is None:
        return {}
    options = schema.BuiltinOptionsCreator(kind, op.BuiltinOptions())
    result = {}
    for key, value in vars(options).items():
        if isinstance(value, (bool, int, float)):
            result[key] = _ACTIVATIONS.get(value, value) if key == "fusedActivationFunction" else value
    return result


def _enum_names(enum_class) -> dict[int, str]:
    return {value: name for name, value in vars(enum_class).items() if isinstance(value, int) and not name.startswith("_")}


def _load_enums():
    from ai_edge_litert import schema_py_generated as schema

    return _enum_names(schema.BuiltinOperator), _enum_names(schema.ActivationFunctionType)


_OP_NAMES, _ACTIVATIONS = _load_enums()


# --- text rendering for the terminal ------------------------------------------------------------

def format_info(info: ModelInfo) -> str:
    lines = [f"{info.path or 'model'}: {info.size_bytes:,} bytes, {sum(len(s.operators) for s in info.subgraphs)} "
             f"operators in {len(info.subgraphs)} subgraph(s)"]
    for title, tensors in (("inputs", info.inputs), ("outputs", info.outputs)):
        lines.append(f"{title}:")
        for t in tensors:
            quant = f"scale {t.scale:.6g}, zero point {t.zero_point}" if t.scale else "not quantized"
            shape = "x".join(str(d if s >= 0 else "?") for d, s in zip(t.shape, t.shape_signature)) or "scalar"
            lines.append(f"  {t.name}: {shape} {t.dtype} ({quant})")
    lines.append("ops: " + ", ".join(f"{name} x{count}" for name, count in info.op_histogram().items()))
    floats = info.float_tensors()
    lines.append(f"float tensors inside the graph: {len(floats)}" + ("" if floats else " (full integer)"))
    if info.metadata is not None:
        md = info.metadata
        labels = md.get("labels") or []
        shown = ", ".join(labels[:10]) + (f", ... ({len(labels)} in all)" if len(labels) > 10 else "")
        lines.append(f"edgecnn metadata: {md.get('model_name') or '?'}, {md.get('height')}x{md.get('width')} "
                     f"{md.get('channel_order')}, mean {md.get('mean')}, std {md.get('std')}, "
                     f"quantization {md.get('quantization') or '?'} ({md.get('quantization_source') or '?'}), "
                     f"target {md.get('target')}, edgecnn {md.get('edgecnn_version') or '?'}")
        lines.append(f"labels: {shown or '(none)'}")
    elif info.metadata_error:
        lines.append(f"edgecnn metadata: unreadable ({info.metadata_error})")
    else:
        lines.append("edgecnn metadata: none (labels from --labels FILE or class indices)")
    lines.append(_standard_line(info.standard))
    others = [name for name in info.metadata_entries if name not in (METADATA_NAME, "TFLITE_METADATA")]
    if others:
        lines.append("other metadata entries: " + ", ".join(others))
    return "\n".join(lines)


def _standard_line(std: dict | None) -> str:
    if std is None:
        return "standard metadata (TFLITE_METADATA): none (MediaPipe and the Task Library cannot use this model)"
    if "error" in std:
        return f"standard metadata (TFLITE_METADATA): unreadable ({std['error']})"
    labels = std.get("labels")
    return (f"standard metadata (TFLITE_METADATA): {std.get('name') or '?'}, "
            f"{std.get('height')}x{std.get('width')} {std.get('channel_order') or 'colour space unknown'}, "
            f"mean {std.get('mean')}, std {std.get('std')}, "
            + (f"{len(labels)} labels (labels.txt)" if labels else "no labels"))
