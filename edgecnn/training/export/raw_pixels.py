"""``--io uint8`` exports that MediaPipe, the Task Library and Android's ML binding feed raw pixels.

Those readers put camera pixels (0..255) straight into a uint8 input; edgecnn's own preprocessing
computes ``(pixel - mean) / std`` and quantizes it with the input's scale and zero point. The two
agree bit for bit only when the normalization *is* the input quantization: ``mean = zero_point``
and ``std = 1 / scale``. The converter picks scale and zero point from the calibration range of
the normalized input (for mean = std = 127.5: scale 1/127.5, zero point 127 or 128), so the
export records exactly those values as its normalization, in both metadata entries. The model
then sees inputs shifted by at most half a pixel step (0.5/127.5) from training's mean of 127.5,
which the export's parity check measures like any other quantization error.
"""

from __future__ import annotations

from edgecnn.errors import ModelError
from edgecnn.tflite.flatbuffer import parse_model

UINT8 = 3  # tflite TensorType.UINT8


def raw_pixel_normalization(data: bytes, channels: int) -> tuple[list[float], list[float]]:
    """``(mean, std)`` under which a raw uint8 pixel is exactly the model's quantized input."""
    sub = parse_model(data).Subgraphs(0)
    tensor = sub.Tensors(sub.Inputs(0))
    quant = tensor.Quantization()
    if tensor.Type() != UINT8 or quant is None or quant.ScaleLength() != 1:
        raise ModelError("a raw-pixel (uint8) export needs one uint8 input with per-tensor quantization")
    scale, zero_point = float(quant.Scale(0)), int(quant.ZeroPoint(0))
    return [float(zero_point)] * channels, [1.0 / scale] * channels
