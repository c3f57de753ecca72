"""LiteRT's GPU accelerator behind the Interpreter methods the rest of edgecnn uses.

LiteRT's Python ``Interpreter`` has no GPU delegate built in; its ``CompiledModel`` API does
(WebGPU/OpenCL/Metal). ``GpuInterpreter`` wraps a CompiledModel with ``get_input_details``,
``set_tensor``, ``invoke``, ``get_tensor`` and ``get_output_details``, so the classifier, loop
and profiler do not care which path runs the model. Tensor quantization parameters come from
the flatbuffer itself, because CompiledModel does not report them.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from edgecnn.errors import RuntimeUnavailable
from edgecnn.runtime.native_exit import mark_accelerator_loaded
from edgecnn.tflite.flatbuffer import parse_model

_GPU_HINT = ("no usable GPU accelerator here; LiteRT needs a working OpenCL, Vulkan (WebGPU) or Metal driver, "
             "or give a GPU delegate library with --delegate-path")


def _gpu_hint() -> str:
    """The hint, plus what was tried: the Vulkan loader and the driver it was pointed at."""
    try:
        ctypes.CDLL("libvulkan.so.1")
        loader = "Vulkan loader libvulkan.so.1 found"
    except OSError:
        loader = "Vulkan loader libvulkan.so.1 not found (apt-get install libvulkan1)"
    driver = os.environ.get("VK_DRIVER_FILES") or os.environ.get("VK_ICD_FILENAMES")
    driver = f"VK_DRIVER_FILES={driver}" if driver else "the system's Vulkan drivers (VK_DRIVER_FILES unset)"
    return (f"{_GPU_HINT} (tried: {loader}, {driver}, no adapter initialised; for a software GPU to test with, "
            "apt-get install chromium-common and set VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json)")


def load_gpu_model(data: bytes, runtime_name: str) -> "GpuInterpreter":
    if runtime_name != "ai_edge_litert":
        raise RuntimeUnavailable(f"GPU without --delegate-path needs ai-edge-litert, but {runtime_name} is in use; "
                                 "pip install ai-edge-litert, or give a delegate library with --delegate-path")
    mark_accelerator_loaded()
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator

    try:
        # GPU alone, not GPU|CPU: a model that silently ran on the CPU would mislead a user who asked for the GPU.
        model = CompiledModel.from_buffer(data, hardware_accel=HardwareAccelerator.GPU)
    except RuntimeError:
        raise RuntimeUnavailable(_gpu_hint()) from None
    return GpuInterpreter(model, data)


class GpuInterpreter:
    """A CompiledModel with the subset of the Interpreter API edgecnn calls."""

    def __init__(self, model, data: bytes):
        self._model = model
        signature = next(iter(model.get_signature_list()))
        subgraph = parse_model(data).Subgraphs(0)
        self._inputs = [_detail(d, subgraph) for d in model.get_input_tensor_details(signature).values()]
        self._outputs = [_detail(d, subgraph) for d in model.get_output_tensor_details(signature).values()]
        self._in_buffers = model.create_input_buffers(0)
        self._out_buffers = model.create_output_buffers(0)
        self._position = {d["index"]: i for i, d in enumerate(self._inputs)}
        self._out_position = {d["index"]: i for i, d in enumerate(self._outputs)}

    def allocate_tensors(self) -> None:  # buffers are created with the model
        return None

    def get_input_details(self) -> list[dict]:
        return [dict(d) for d in self._inputs]

    def get_output_details(self) -> list[dict]:
        return [dict(d) for d in self._outputs]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        self._in_buffers[self._position[index]].write(np.ascontiguousarray(value))

    def is_fully_accelerated(self) -> bool:
        """LiteRT's own answer: does every op of the model run on the accelerator?"""
        return bool(self._model.is_fully_accelerated())

    def invoke(self) -> None:
        self._model.run_by_index(0, self._in_buffers, self._out_buffers)

    def get_tensor(self, index: int) -> np.ndarray:
        detail = self._outputs[self._out_position[index]]
        count = int(np.prod(detail["shape"]))
        return np.asarray(self._out_buffers[self._out_position[index]].read(count, detail["dtype"])).reshape(
            detail["shape"])


def _detail(raw: dict, subgraph) -> dict:
    tensor = subgraph.Tensors(raw["index"])
    q = tensor.Quantization()
    scale = float(q.Scale(0)) if q is not None and q.ScaleLength() else 0.0
    zero_point = int(q.ZeroPoint(0)) if q is not None and q.ZeroPointLength() else 0
    return {"name": raw["name"], "index": raw["index"], "dtype": np.dtype(raw["dtype"]).type,
            "shape": np.asarray(raw["shape"], dtype=np.int32), "quantization": (scale, zero_point)}
