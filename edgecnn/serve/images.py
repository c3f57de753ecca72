"""Uploaded images: check the format and the pixel count from the header, then decode.

A 30,000 x 30,000 PNG compresses to a few kilobytes but decodes to 2.7 GB, so the size limit on
the upload does not protect memory. The width and height are read from the header first (PNG's
IHDR chunk, JPEG's SOF segment) and the image is refused with 413 when it has more pixels than
allowed; only then does OpenCV decode it, through the same ``decode_image`` that ``edgecnn
classify`` uses on files. (Pillow does the same with ``Image.MAX_IMAGE_PIXELS``; OpenCV's own
``OPENCV_IO_MAX_IMAGE_PIXELS`` is 2^30 by default, far above what a Pi can hold.)
"""

from __future__ import annotations

import struct

import numpy as np

from edgecnn.errors import DataError, RequestRejected
from edgecnn.runtime.preprocess import decode_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
# Start-of-frame markers carry the frame size: C0..CF except DHT (C4), JPG (C8) and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0..7, SOI.
_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


def sniff_format(data: bytes) -> str | None:
    """'PNG', 'JPEG' or None, from the first bytes."""
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(JPEG_SOI):
        return "JPEG"
    return None


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which the format requires to come first."""
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise RequestRejected(400, "PNG is truncated or has no IHDR chunk")
    return struct.unpack(">II", data[16:24])


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first start-of-frame segment, walking the marker segments before it."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise RequestRejected(400, "JPEG is corrupt: expected a marker")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker == 0xDA:  # start of scan before any frame header
            break
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    raise RequestRejected(400, "JPEG is truncated or has no frame header")


def image_size(data: bytes, kind: str) -> tuple[int, int]:
    return png_size(data) if kind == "PNG" else jpeg_size(data)


def decode_upload(data: bytes, *, max_pixels: int, name: str = "image") -> np.ndarray:
    """An uploaded JPEG or PNG as HxWx3 uint8 RGB; RequestRejected (400/413/415) for anything else."""
    if not data:
        raise RequestRejected(400, f"{name} is empty; send the image's bytes as the request body")
    kind = sniff_format(data)
    if kind is None:
        raise RequestRejected(415, f"{name} is neither JPEG nor PNG; send a .jpg or .png image")
    width, height = image_size(data, kind)
    if width == 0 or height == 0:
        raise RequestRejected(400, f"{name}: {kind} header says {width}x{height} pixels")
    if width * height > max_pixels:
        raise RequestRejected(413, f"{name} is {width}x{height} = {width * height} pixels, over the limit of "
                                   f"{max_pixels}; resize it (or start the server with a larger --max-pixels)")
    try:
        return decode_image(data, name=name)
    except DataError as exc:
        raise RequestRejected(400, str(exc)) from None
