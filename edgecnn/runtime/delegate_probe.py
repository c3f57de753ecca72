"""Does a delegate really run here? Load a one-op model on it, invoke it, check the answer.

``doctor`` used to report a delegate as "found" when its library could be opened, which said
nothing about whether it initialises (LiteRT's GPU accelerator loads fine and then finds no
Vulkan adapter). The probe model is ``ADD(x, x)`` on a float32 [1, 4] input, built with
LiteRT's flatbuffer schema in memory; a delegate works when it returns ``2 * x``.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.interpreter import load_interpreter
from edgecnn.runtime.native_stdout import native_stdout_to_stderr

_PROBE_INPUT = np.asarray([[0.5, -1.0, 2.0, 3.25]], np.float32)


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    delegate: str
    works: bool
    detail: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def probe_model_bytes() -> bytes:
    """A .tflite with one ADD op: output = input + input."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    tensors = []
    for name in ("x", "y"):
        tensor = schema.TensorT()
        tensor.name, tensor.shape, tensor.type, tensor.buffer = name, list(_PROBE_INPUT.shape), schema.TensorType.FLOAT32, 0
        tensors.append(tensor)
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ADD
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 0], [1]
    op.builtinOptionsType, op.builtinOptions = schema.BuiltinOptions.AddOptions, schema.AddOptionsT()
    sub = schema.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = tensors, [op], [0], [1], "main"
    model = schema.ModelT()
    model.version, model.description = 3, "edgecnn delegate probe"
    model.operatorCodes, model.subgraphs, model.buffers = [code], [sub], [schema.BufferT()]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def probe_delegate(delegate: str, *, device: str | None = None, delegate_path=None) -> ProbeResult:
    """Load, invoke and check the probe model on ``delegate`` (no fallback: the CPU must not stand in)."""
    try:
        data = probe_model_bytes()
    except ModuleNotFoundError as exc:
        return ProbeResult(delegate, False, f"cannot build the probe model without ai-edge-litert ({exc})")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.tflite"
        path.write_bytes(data)
        try:
            loaded = load_interpreter(path, threads=1, delegate=delegate, device=device, delegate_path=delegate_path)
            got = _run(loaded.interpreter)
        except EdgecnnError as exc:
            return ProbeResult(delegate, False, str(exc))
        except (RuntimeError, ValueError) as exc:  # the native runtime failed at invoke
            return ProbeResult(delegate, False, f"invoke failed: {str(exc).strip().splitlines()[0]}")
    if not np.allclose(got, 2 * _PROBE_INPUT, atol=1e-3):
        return ProbeResult(delegate, False, f"ran but computed {got.tolist()} for 2 * {_PROBE_INPUT.tolist()}")
    return ProbeResult(delegate, True, f"ran a one-op model on {loaded.runtime} {loaded.runtime_version}: correct result")


def _run(interpreter) -> np.ndarray:
    with native_stdout_to_stderr():
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], _PROBE_INPUT)
        interpreter.invoke()
        return np.asarray(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))
