"""The live attention overlay of ``edgecnn run --explain``: the class activation map of each frame,
from the classification's own invoke, blended onto the frame cheaply.

``CamClassifier`` is a ``TFLiteClassifier`` whose graph (in memory) has the final feature map as a
second output, so one invoke gives the scores and the map; ``cam_for(scores)`` forms the top class's
map ``W[k] . F[x, y]`` at the feature map's own resolution (3x3 for the 96x96 reference model) in
the thread that ran inference. The loop carries it with the frame; the outputs call ``blend_into``.

Blending is what costs at 640x480 (issue 17 measured the first version at 102-138% of the frame
time: map resized to the input, colour-mapped at full size, a new blended frame). Here the small map
is scaled to 0..255 and coloured with a 256-entry JET lookup table at its own size (9 pixels), resized
once to the frame with ``cv2.resize`` into a buffer allocated once, and ``cv2.addWeighted`` writes
into the frame itself. ``refresh=N`` (``run --explain-every N``) recolours and resizes the map only
every Nth frame and blends the last colour layer in between: the heatmap then lags by up to N-1
frames and costs about the blend alone. Models without a pooling + dense head have no CAM; occlusion would cost a few
hundred invokes per frame, so ``--explain`` refuses them.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from edgecnn.errors import ModelError
from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.explain.explainer import dequantized_constant
from edgecnn.runtime.explain.head import find_cam_head
from edgecnn.runtime.explain.heatmaps import normalize_map
from edgecnn.runtime.preprocess import dequantize_output
from edgecnn.tflite.flatbuffer import read_tflite_bytes
from edgecnn.tflite.inspect import inspect_bytes

ALPHA = 0.45  # weight of the heatmap in the blend (heatmaps.overlay's too)
# JET as a lookup table: level (0..255) -> BGR colour.
JET_BGR = cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), cv2.COLORMAP_JET).reshape(256, 3)


def cam_head_of(model_path):
    """The model's CAM head, or a one-line ModelError saying why ``--explain`` cannot draw one."""
    data = read_tflite_bytes(model_path)
    head, reason = find_cam_head(inspect_bytes(data, name=str(model_path), checked=True))
    if head is None:
        raise ModelError(f"--explain needs a global-pooling + dense head for its class activation map, and "
                         f"{model_path} has none ({reason}); occlusion is too slow for a live overlay: use "
                         "'edgecnn explain MODEL --images ...' for this model")
    return head


class CamClassifier(TFLiteClassifier):
    """A classifier whose every inference also leaves the final feature map to form the CAM from."""

    def __init__(self, model_path, *, alpha: float = ALPHA, refresh: int = 1, **kwargs):
        head = cam_head_of(model_path)
        super().__init__(model_path, extra_outputs=(head.features,), **kwargs)
        self.head = head
        self.feature_detail = self.extra_output_details[head.features]
        self.weights = dequantized_constant(self.interpreter, head.weights)  # (classes, C)
        self.blender = CamBlender(alpha, refresh=refresh)

    def cam_for(self, scores: np.ndarray) -> "CamFrame":
        """The top class's map from the feature map the last invoke left (call right after it)."""
        raw = self.interpreter.get_tensor(self.feature_detail["index"])
        features = dequantize_output(raw, self.feature_detail)[0]  # (h, w, C)
        k = int(np.argmax(scores))
        return CamFrame(features @ self.weights[k], k, self.blender)


@dataclasses.dataclass
class CamFrame:
    """One frame's map (feature-map resolution) and the blender that draws it."""

    raw: np.ndarray
    class_index: int
    blender: "CamBlender"

    def blend_into(self, image: np.ndarray) -> np.ndarray:
        return self.blender.blend_into(image, self.raw)


class CamBlender:
    """Blends small maps onto frames in place, reusing one full-size colour buffer."""

    def __init__(self, alpha: float = ALPHA, *, refresh: int = 1):
        if refresh < 1:
            raise ModelError(f"the heatmap refresh must be every 1 or more frames, got {refresh}")
        self.alpha, self.refresh = float(alpha), int(refresh)
        self._colour: np.ndarray | None = None
        self._blends = 0

    def colour(self, raw: np.ndarray, height: int, width: int) -> np.ndarray:
        """The map coloured (BGR) at its own size, then resized once to ``height`` x ``width``."""
        levels = np.rint(normalize_map(raw) * 255).astype(np.uint8)
        small = JET_BGR[levels]
        if self._colour is None or self._colour.shape[:2] != (height, width):
            self._colour = np.empty((height, width, 3), np.uint8)
        return cv2.resize(small, (width, height), dst=self._colour, interpolation=cv2.INTER_LINEAR)

    def blend_into(self, image: np.ndarray, raw: np.ndarray) -> np.ndarray:
        """``image`` (BGR uint8, changed in place) with the map blended on top; returned for chaining."""
        stale = self._colour is None or self._colour.shape[:2] != image.shape[:2]
        colour = self.colour(raw, *image.shape[:2]) if stale or self._blends % self.refresh == 0 else self._colour
        self._blends += 1
        cv2.addWeighted(image, 1.0 - self.alpha, colour, self.alpha, 0.0, dst=image)
        return image
