"""The camera loop's preprocessing: a frame into the model's input tensor, no copy, no allocation.

The same steps as ``TFLiteClassifier.preprocess_frame`` (resize, then colour conversion of the
small image only, then the per-channel lookup table of ``InputConverter``), but each step writes
into an array allocated once, and the last one writes straight into the interpreter's input
tensor through its numpy view (``Interpreter.tensor``), so ``set_tensor``'s copy goes away too.
Runtimes without that view (the GPU model wrapper) get a preallocated buffer and ``set_tensor``.

The view must not outlive the write: LiteRT refuses to ``invoke`` while a numpy array points into
its buffers, so each frame takes a fresh view and drops it before inference.

The scores come back the same way: read through a view of the output tensor and dequantized
into one float32 array kept for the run (the same float32 arithmetic as ``dequantize_output``),
instead of ``get_tensor``'s copy and two new arrays per frame. That array is overwritten by the
next ``infer``: the loop turns it into a ``Prediction`` before the next frame is inferred.
"""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.preprocess import FrameBuffers, InputConverter, model_pixels_from_bgr, quantization_of


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
        self._invoke = classifier.interpreter.invoke
        output = classifier.output_detail
        self._output_view = view(output["index"]) if view is not None else None
        self._scores = np.empty(int(np.prod(output["shape"])), np.float32)
        scale, zero_point = quantization_of(output)
        floating = np.issubdtype(np.dtype(output["dtype"]), np.floating)
        # Integer outputs without a scale go through infer_current, which says what is wrong.
        self._dequantize = None if floating else (np.float32(zero_point), np.float32(scale)) if scale else False

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
        """Scores for the frame last written (a float32 array reused by the next call)."""
        if self._output_view is None or self._dequantize is False:
            return self.classifier.infer_current()
        self._invoke()
        raw = self._output_view().reshape(-1)
        if self._dequantize is None:
            self._scores[...] = raw
        else:
            zero_point, scale = self._dequantize
            np.multiply(np.subtract(raw, zero_point, out=self._scores), scale, out=self._scores)
        del raw  # no reference into the interpreter may remain when it next invokes
        return self._scores
