"""The camera loop's preprocessing: a frame into the model's input tensor, no copy, no allocation.

The same steps as ``TFLiteClassifier.preprocess_frame`` (resize, then colour conversion of the
small image only, then the per-channel lookup table of ``InputConverter``), but each step writes
into an array allocated once, and the last one writes straight into the interpreter's input
tensor through its numpy view (``Interpreter.tensor``), so ``set_tensor``'s copy goes away too.
Runtimes without that view (the GPU model wrapper) get a preallocated buffer and ``set_tensor``.

The view must not outlive the write: LiteRT refuses to ``invoke`` while a numpy array points into
its buffers, so each frame takes a fresh view and drops it before inference.
"""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.preprocess import FrameBuffers, InputConverter, model_pixels_from_bgr


class FrameInput:
    def __init__(self, classifier):
        self.classifier = classifier
        self.spec = classifier.spec
        self._convert = InputConverter(self.spec, classifier.input_detail)
        self._buffers = FrameBuffers(self.spec)
        self._index = classifier.input_detail["index"]
        view = getattr(classifier.interpreter, "tensor", None)
        self._view = view(self._index) if view is not None else None
        self.zero_copy = self._view is not None
        self._staging = None if self.zero_copy else \
            np.empty((1, self.spec.height, self.spec.width, self.spec.channels), self._convert.dtype)

    def write(self, bgr_uint8: np.ndarray) -> None:
        """Put ``bgr_uint8`` (a camera frame) into the model's input tensor."""
        pixels = model_pixels_from_bgr(bgr_uint8, self.spec, self._buffers)
        if self._view is None:
            self._convert(pixels, self._staging[0])
            self.classifier.interpreter.set_tensor(self._index, self._staging)
            return
        tensor = self._view()
        self._convert(pixels, tensor[0])
        del tensor  # no reference into the interpreter may remain when it invokes

    def infer(self) -> np.ndarray:
        """Scores for the frame last written."""
        return self.classifier.infer_current()
