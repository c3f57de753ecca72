"""Explain a .tflite classifier's answer without TensorFlow: CAM where the graph allows, else occlusion.

CAM: the graph is rewritten in memory so that the final feature map is a second output (the
file on disk is untouched), which keeps the delegate's fused kernels: one invoke gives the
scores and the map. Reading the intermediate tensor of an unmodified graph would need
``experimental_preserve_all_tensors``, which turns off XNNPACK here and reads zeros for fused
tensors. The feature map and dense weights are dequantized with their own tensors' scale and
zero point (per channel for the weights).

Occlusion: a grey patch (the normalization mean, i.e. a zero input) slides over the image; the
drop of the class score is the evidence at each place. Patches are invoked in batches.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.explain.head import find_cam_head
from edgecnn.runtime.explain.heatmaps import normalize_map, resize_map
from edgecnn.runtime.explain.occlusion import OcclusionPlan, occlusion_map
from edgecnn.runtime.interpreter import default_threads, import_runtime
from edgecnn.runtime.preprocess import (InputConverter, InputSpec, dequantize_output, model_pixels_from_bgr,
                                        model_pixels_from_rgb)
from edgecnn.tflite.flatbuffer import read_tflite_bytes
from edgecnn.tflite.graph_outputs import with_extra_outputs
from edgecnn.tflite.inspect import inspect_bytes
from edgecnn.tflite.metadata import metadata_from_bytes

METHODS = ("auto", "cam", "occlusion")


@dataclasses.dataclass
class Explanation:
    heatmap: np.ndarray  # 0..1 at the model's input size
    raw: np.ndarray  # the unnormalized map at its own resolution (feature map or occlusion grid)
    class_index: int
    score: float
    scores: np.ndarray
    method: str  # "cam" | "occlusion"


class TFLiteExplainer:
    def __init__(self, model_path, *, method: str = "auto", threads: int | None = None,
                 occlusion: OcclusionPlan | None = None, occlusion_budget: int | None = None):
        if method not in METHODS:
            raise ModelError(f"unknown explain method {method!r}; use one of {', '.join(METHODS)}")
        self.model_path = Path(model_path)
        data = read_tflite_bytes(model_path)
        info = inspect_bytes(data, name=str(model_path), checked=True)
        md = metadata_from_bytes(data, name=str(model_path))
        self.head, self.no_head_reason = find_cam_head(info)
        self.method = _choose(method, self.head, self.no_head_reason, self.model_path)
        self.threads = threads or default_threads()
        if self.method == "cam":
            data = with_extra_outputs(data, [self.head.features])
        self.interpreter = _interpreter(data, self.threads, self.model_path)
        self.input_detail = self.interpreter.get_input_details()[0]
        self.spec = InputSpec.from_metadata(md) if md else InputSpec.from_input_shape(self.input_detail["shape"])
        self.labels = list(md.labels) if md else None
        self._convert = InputConverter(self.spec, self.input_detail)
        outputs = {d["index"]: d for d in self.interpreter.get_output_details()}
        self.score_detail = outputs[info.main.outputs[0]]
        self.num_classes = int(np.prod(self.score_detail["shape"][1:]))
        self.labels = self.labels or [str(i) for i in range(self.num_classes)]
        if self.method == "cam":
            self.feature_detail = outputs[self.head.features]
            self.weights = dequantized_constant(self.interpreter, self.head.weights)
        budget = {} if occlusion_budget is None else {"budget": int(occlusion_budget)}
        self.occlusion = occlusion or OcclusionPlan.for_size(self.spec.height, self.spec.width, **budget)
        if self.method == "occlusion":
            self._check_occlusion_budget(method)

    def _check_occlusion_budget(self, asked: str) -> None:
        """Before any image: occlusion over its budget is a one-line error saying what was tried."""
        needed = len(self.occlusion.positions(self.spec.height, self.spec.width))
        if needed <= self.occlusion.budget:
            return
        tried = (f"{self.model_path.name} has no global-pooling + dense head for CAM ({self.no_head_reason}), and "
                 if asked == "auto" else "")
        raise ModelError(f"{tried}occlusion would need {needed} invokes per image at {self.spec.height}x"
                         f"{self.spec.width}, over the budget of {self.occlusion.budget}; raise it with "
                         "--occlusion-budget (each invoke scores one occluded copy of the image)")

    def check_class(self, class_index: int | None) -> None:
        if class_index is not None and not 0 <= class_index < self.num_classes:
            raise DataError(f"class index {class_index} is out of range; {self.model_path.name} has "
                            f"{self.num_classes} classes (0..{self.num_classes - 1})")

    def input_tensor(self, rgb_uint8: np.ndarray) -> np.ndarray:
        return self._convert(model_pixels_from_rgb(rgb_uint8, self.spec))[None]

    def explain(self, rgb_uint8: np.ndarray, class_index: int | None = None) -> Explanation:
        """The heatmap for ``class_index`` (default: the top class) on one RGB image."""
        return self.explain_pixels(model_pixels_from_rgb(rgb_uint8, self.spec), class_index)

    def explain_frame(self, bgr_uint8: np.ndarray, class_index: int | None = None) -> Explanation:
        """The same for a BGR camera frame (what a live overlay would call)."""
        return self.explain_pixels(model_pixels_from_bgr(bgr_uint8, self.spec), class_index)

    def explain_pixels(self, pixels: np.ndarray, class_index: int | None = None) -> Explanation:
        """The same for uint8 pixels already at model size and in the model's channel order."""
        self.check_class(class_index)
        scores, features = self._invoke(self._convert(pixels)[None])
        k = int(np.argmax(scores)) if class_index is None else class_index
        if self.method == "cam":
            raw = features[0] @ self.weights[k]
        else:
            raw = occlusion_map(self._scores_of_batch, pixels, k, float(scores[k]), self.spec, self.occlusion)
        heat = resize_map(normalize_map(raw), self.spec.height, self.spec.width)
        return Explanation(heat, raw, k, float(scores[k]), scores, self.method)

    def _invoke(self, batch: np.ndarray):
        interpreter = self.interpreter
        if list(self.input_detail["shape"]) != list(batch.shape):
            interpreter.resize_tensor_input(self.input_detail["index"], list(batch.shape))
            interpreter.allocate_tensors()
            self.input_detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(self.input_detail["index"], batch)
        interpreter.invoke()
        scores = dequantize_output(interpreter.get_tensor(self.score_detail["index"]), self.score_detail)
        scores = scores.reshape(len(batch), -1)
        if self.method != "cam":
            return (scores[0] if len(batch) == 1 else scores), None
        features = dequantize_output(interpreter.get_tensor(self.feature_detail["index"]), self.feature_detail)
        return scores[0], features

    def _scores_of_batch(self, pixels_batch: np.ndarray) -> np.ndarray:
        batch = np.stack([self._convert(p) for p in pixels_batch])
        scores, _ = self._invoke(batch)
        return scores.reshape(len(batch), -1)


def _choose(method: str, head, reason: str, path: Path) -> str:
    if method == "cam" and head is None:
        raise ModelError(f"{path.name} has no global-pooling + dense head for CAM ({reason}); "
                         "use --method occlusion (model-agnostic, slower)")
    if method == "auto":
        return "cam" if head is not None else "occlusion"
    return method


def _interpreter(data: bytes, threads: int, path: Path):
    runtime = import_runtime()
    try:
        interpreter = runtime.Interpreter(model_content=data, num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelError(f"{path} cannot be loaded by {runtime.name} for explaining ({first}); "
                         "re-export it with edgecnn") from None
    return interpreter


def dequantized_constant(interpreter, index: int) -> np.ndarray:
    """A constant tensor as float32, per-channel quantization included."""
    detail = next(d for d in interpreter.get_tensor_details() if d["index"] == index)
    raw = interpreter.get_tensor(index)
    q = detail.get("quantization_parameters") or {}
    scales = np.asarray(q.get("scales", []), np.float32)
    if np.issubdtype(raw.dtype, np.floating) or scales.size == 0:
        return np.asarray(raw, np.float32)
    zero_points = np.broadcast_to(np.asarray(q.get("zero_points", 0), np.float32), scales.shape)
    shape = [1] * raw.ndim
    if scales.size > 1:
        shape[int(q.get("quantized_dimension", 0))] = scales.size
    return (raw.astype(np.float32) - zero_points.reshape(shape)) * scales.reshape(shape)
