"""The one preprocessing of edgecnn: decode, resize, order channels, normalize, (de)quantize.

Training data loading, evaluation of .tflite files, parity, calibration, ``classify`` and
the camera loop all call these functions, so a model is never checked with preprocessing
different from what runs on the device.

Convention (see ``metadata.py``): the model's float input is ``(pixel - mean) / std`` with
``pixel`` in 0..255 in the model's ``channel_order``; integer inputs are then quantized with
the input tensor's own scale and zero point.

Order of work, chosen for speed on small models (where preprocessing can cost more than the
model itself): resize the uint8 image first (the expensive step, and cheaper on fewer pixels
afterwards), then reorder channels, then one affine map to the tensor's dtype. For camera
frames, ``InputConverter`` does the affine map (normalize + quantize) as a 256-entry lookup
table per channel built from ``normalize`` and ``quantize_input`` themselves, so the fast path
is bit-identical to the reference path (``prepare_*`` + ``quantize_input``).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import DataError, ModelError
from edgecnn.tflite.metadata import CHANNEL_ORDERS

# File types OpenCV decodes (GIF needs OpenCV >= 4.11; older builds report it as undecodable).
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".pnm"}
)
RESIZE_METHODS = ("area", "linear", "nearest")

# IMREAD_UNCHANGED would ignore EXIF orientation (phone photos would come out rotated);
# ANYCOLOR|ANYDEPTH keeps 16-bit depth and grayscale, applies orientation, expands palettes
# and drops alpha, the same as Keras' decode_image(channels=3).
_IMREAD_FLAGS = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH


def is_image_file(path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def image_files(folder, *, recursive: bool = True, skip_hidden: bool = True) -> tuple[list[Path], int]:
    """(sorted image files in ``folder``, number of other files). Hidden files and folders are skipped
    unless ``skip_hidden=False``."""
    folder = Path(folder)
    try:
        found = list(_walk_files(folder) if recursive else folder.iterdir())
    except PermissionError as exc:
        # pathlib's rglob skips unreadable folders silently: a class folder with mode 000 would
        # look empty ("has no images") when the real cause is that we may not read it.
        where = exc.filename or folder
        raise DataError(f"cannot read {where}: permission denied; make it readable "
                        f"(chmod -R a+rX {where}) or run as a user who can read it") from None
    files = sorted(p for p in found if p.is_file() and not (skip_hidden and _is_hidden(p, folder)))
    images = [p for p in files if is_image_file(p)]
    return images, len(files) - len(images)


def _raise_permission_error(error: OSError) -> None:
    if isinstance(error, PermissionError):
        raise error


def _walk_files(folder: Path):
    """Every entry below ``folder`` (symlinked folders not followed, like ``rglob``); unreadable folders raise."""
    for parent, dirs, files in os.walk(folder, onerror=_raise_permission_error):
        for name in dirs + files:
            yield Path(parent, name)


def _is_hidden(path: Path, top: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(top).parts)


def read_image(path) -> np.ndarray:
    """An image file as an HxWx3 uint8 RGB array.

    Grayscale, palette, 16-bit and alpha images are converted (alpha is dropped). Reads the
    bytes with numpy and decodes them, so paths OpenCV's own file API mishandles (non-ASCII
    names on Windows) still work. Raises DataError for a missing or undecodable file.
    """
    path = Path(path)
    try:
        buffer = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc.strerror or exc}; check the path and permissions") from None
    return decode_image(buffer, name=str(path))


def decode_image(buffer, name="image") -> np.ndarray:
    """Encoded image bytes (a bytes object or a uint8 array) as HxWx3 uint8 RGB, exactly as ``read_image``
    decodes a file. Raises DataError for an empty or undecodable buffer."""
    buffer = np.frombuffer(buffer, dtype=np.uint8) if isinstance(buffer, (bytes, bytearray, memoryview)) else buffer
    image = cv2.imdecode(buffer, _IMREAD_FLAGS) if buffer.size else None
    if image is None:
        raise DataError(f"cannot decode image {name}: not an image OpenCV can read, or the file is corrupt")
    return to_rgb_uint8(image, name=name)


def to_rgb_uint8(image: np.ndarray, name="image") -> np.ndarray:
    """A decoded OpenCV image (BGR/BGRA/gray, 8/16-bit or float) as HxWx3 uint8 RGB."""
    image = _to_uint8(image, name)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    raise DataError(f"{name} has shape {image.shape}; expected a grayscale, colour or colour+alpha image")


def _to_uint8(image: np.ndarray, name: str) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        # 65535 -> 255 exactly, rounding to nearest.
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if image.dtype in (np.float32, np.float64):
        return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    raise DataError(f"{name} has pixel type {image.dtype}; save it as 8- or 16-bit")


@dataclasses.dataclass
class InputSpec:
    """What a model expects as input: size, channel order, normalization, resize method."""

    height: int
    width: int
    channels: int = 3
    channel_order: str = "RGB"
    # One value is used for every channel, so the default (inputs in -1..1) fits RGB and GRAY alike.
    mean: tuple[float, ...] = (127.5,)
    std: tuple[float, ...] = (127.5,)
    resize: str = "area"

    def __post_init__(self):
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        if self.channel_order not in CHANNEL_ORDERS:
            raise ModelError(f"channel order {self.channel_order!r} is not one of {', '.join(CHANNEL_ORDERS)}")
        if self.channels not in (1, 3) or (self.channels == 1) != (self.channel_order == "GRAY"):
            raise ModelError(
                f"channel order {self.channel_order} does not fit a {self.channels}-channel input; "
                "use GRAY for 1 channel, RGB or BGR for 3"
            )
        if self.height < 1 or self.width < 1:
            raise ModelError(f"input size {self.height}x{self.width} is not usable; height and width must be >= 1")
        for name in ("mean", "std"):
            values = getattr(self, name)
            if len(values) == 1:
                setattr(self, name, values * self.channels)
            elif len(values) != self.channels:
                raise ModelError(f"{name} has {len(values)} values; give 1 or {self.channels}")
        if any(v == 0 for v in self.std):
            raise ModelError("std must not contain 0")
        if self.resize not in RESIZE_METHODS:
            raise ModelError(f"resize method {self.resize!r} is not one of {', '.join(RESIZE_METHODS)}")

    @classmethod
    def from_metadata(cls, md) -> "InputSpec":
        return cls(height=md.height, width=md.width, channels=md.channels, channel_order=md.channel_order,
                   mean=tuple(md.mean), std=tuple(md.std), resize=md.resize or "area")

    @classmethod
    def from_input_shape(cls, shape, *, channel_order: str | None = None, mean=None, std=None,
                         resize: str = "area") -> "InputSpec":
        """A spec for a model without edgecnn metadata: size from its input tensor, the rest from flags.

        ``shape`` is the input tensor's shape, NHWC or HWC. ``channel_order`` defaults to RGB
        (GRAY for a 1-channel input); ``mean``/``std`` default to 127.5 (inputs in -1..1).
        """
        dims = [int(d) for d in shape]
        if len(dims) == 4:
            dims = dims[1:]
        if len(dims) != 3 or dims[2] not in (1, 3):
            raise ModelError(
                f"model input shape {list(shape)} is not an image (N, height, width, 1 or 3 channels); "
                "edgecnn runs image classifiers only"
            )
        height, width, channels = dims
        order = channel_order or ("GRAY" if channels == 1 else "RGB")
        return cls(height=height, width=width, channels=channels, channel_order=order,
                   mean=tuple(mean) if mean else (127.5,), std=tuple(std) if std else (127.5,), resize=resize)

    @property
    def size(self) -> tuple[int, int]:
        return self.height, self.width


# --- uint8 image -> uint8 image in the model's size and channel order --------------------

def resize_uint8(image: np.ndarray, spec: InputSpec, out: np.ndarray | None = None) -> np.ndarray:
    """``image`` at the model's size (itself when it already is); ``out`` is a preallocated
    (height, width, channels) uint8 buffer to resize into (the camera loop reuses one)."""
    h, w = image.shape[:2]
    if (h, w) == (spec.height, spec.width):
        return image
    shrinking = h >= spec.height and w >= spec.width
    if spec.resize == "nearest":
        interpolation = cv2.INTER_NEAREST
    elif spec.resize == "area" and shrinking:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LINEAR
    return cv2.resize(image, (spec.width, spec.height), dst=out, interpolation=interpolation)


_FROM_RGB = {"RGB": None, "BGR": cv2.COLOR_RGB2BGR, "GRAY": cv2.COLOR_RGB2GRAY}
_FROM_BGR = {"RGB": cv2.COLOR_BGR2RGB, "BGR": None, "GRAY": cv2.COLOR_BGR2GRAY}


def _reorder(image: np.ndarray, conversion, out: np.ndarray | None = None) -> np.ndarray:
    out = image if conversion is None else cv2.cvtColor(image, conversion, dst=out)
    return out[..., None] if out.ndim == 2 else out


def model_pixels_from_rgb(rgb_uint8: np.ndarray, spec: InputSpec) -> np.ndarray:
    """An RGB uint8 image resized to the model and in its channel order, (h, w, c) uint8."""
    _check_uint8_image(rgb_uint8, "RGB image")
    return _reorder(resize_uint8(rgb_uint8, spec), _FROM_RGB[spec.channel_order])


def model_pixels_from_bgr(bgr_uint8: np.ndarray, spec: InputSpec, buffers=None) -> np.ndarray:
    """A BGR camera frame resized to the model and in its channel order, (h, w, c) uint8.

    Resizes before converting colour: on a 640x480 frame and a 96x96 model the conversion then
    touches 9,216 pixels instead of 307,200, and BGR models skip it altogether. ``buffers``
    (a ``FrameBuffers``) makes both steps write into preallocated arrays: no allocation per frame.
    """
    _check_uint8_image(bgr_uint8, "camera frame")
    resized, converted = (buffers.resized, buffers.converted) if buffers is not None else (None, None)
    return _reorder(resize_uint8(bgr_uint8, spec, resized), _FROM_BGR[spec.channel_order], converted)


class FrameBuffers:
    """The two intermediate images of ``model_pixels_from_bgr``, allocated once per model."""

    def __init__(self, spec: InputSpec):
        self.resized = np.empty((spec.height, spec.width, 3), np.uint8)
        gray = spec.channel_order == "GRAY"
        self.converted = None if spec.channel_order == "BGR" else \
            np.empty((spec.height, spec.width) if gray else (spec.height, spec.width, 3), np.uint8)


def _check_uint8_image(image, what: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise DataError(f"{what} must be an HxWx3 uint8 array, got shape {shape} of {dtype}")


# --- normalization and (de)quantization ----------------------------------------------------

def normalize(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """``(pixel - mean) / std`` as float32; ``pixels`` already in the model's channel order."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return (pixels.astype(np.float32) - mean) / std


def prepare_image(rgb_uint8: np.ndarray, spec: InputSpec) -> np.ndarray:
    """An RGB uint8 image as the model's normalized float32 input, shape (h, w, c)."""
    return normalize(model_pixels_from_rgb(rgb_uint8, spec), spec)


def prepare_frame(bgr_uint8: np.ndarray, spec: InputSpec) -> np.ndarray:
    """A BGR camera frame (as OpenCV delivers it) as the model's normalized float32 input."""
    return normalize(model_pixels_from_bgr(bgr_uint8, spec), spec)


def quantization_of(detail: dict) -> tuple[float, int]:
    """(scale, zero_point) of an interpreter tensor detail; scale 0.0 means not quantized."""
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero_point)


def quantize_input(x_float: np.ndarray, input_detail: dict) -> np.ndarray:
    """Normalized float input in the input tensor's dtype, using its scale and zero point.

    Float tensors pass through as float32 (or float16 where the tensor is float16).
    Integer tensors get ``round(x / scale + zero_point)`` clipped to the dtype's range.
    """
    dtype = np.dtype(input_detail["dtype"])
    if np.issubdtype(dtype, np.floating):
        return np.asarray(x_float, dtype=dtype)
    scale, zero_point = quantization_of(input_detail)
    if scale == 0.0:
        raise ModelError(
            f"model input is {dtype.name} without quantization parameters, so images cannot be fed to it; "
            "export with float32 or int8/uint8 (quantized) input"
        )
    info = np.iinfo(dtype)
    q = np.rint(np.asarray(x_float, dtype=np.float32) / np.float32(scale) + np.float32(zero_point))
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_output(raw: np.ndarray, output_detail: dict) -> np.ndarray:
    """Model output as float32, using the output tensor's scale and zero point if it is quantized."""
    dtype = np.dtype(output_detail["dtype"])
    if np.issubdtype(dtype, np.floating):
        return np.asarray(raw, dtype=np.float32)
    scale, zero_point = quantization_of(output_detail)
    if scale == 0.0:
        raise ModelError(
            f"model output is {dtype.name} without quantization parameters, so it cannot be read as scores; "
            "export with float32 or quantized int8/uint8 output"
        )
    return (np.asarray(raw, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)


class InputConverter:
    """uint8 pixels in the model's channel order -> the input tensor's dtype, in one table lookup.

    For each channel, the 256 possible pixel values are normalized and quantized once with
    ``normalize`` and ``quantize_input``, so converting a frame equals the reference path
    exactly. ``cv2.LUT`` then maps a 96x96x3 image in about 45 us here, against about 250 us
    for subtract, divide, round, clip and cast in numpy.
    """

    def __init__(self, spec: InputSpec, input_detail: dict):
        levels = np.arange(256, dtype=np.uint8).reshape(256, 1).repeat(spec.channels, axis=1)
        table = quantize_input(normalize(levels, spec), input_detail)  # (256, channels)
        self.dtype = table.dtype
        self.channels = spec.channels
        # cv2.LUT takes a 256-entry table with one channel per image channel; it handles
        # uint8/int8/float32 tables, and other dtypes (float16, int16) use numpy indexing.
        self._cv_table = np.ascontiguousarray(table.reshape(256, 1, spec.channels)) \
            if table.dtype in (np.uint8, np.int8, np.float32) else None
        self._table = table

    def __call__(self, pixels_uint8: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The converted pixels; written into ``out`` (same shape, the table's dtype) when given.
        The result is always ``out`` then, even where OpenCV would have allocated its own array."""
        if self._cv_table is not None:
            result = cv2.LUT(pixels_uint8, self._cv_table, dst=out)
            result = result[..., None] if result.ndim == 2 else result
        else:
            result = np.take_along_axis(self._table, pixels_uint8.reshape(-1, self.channels).astype(np.intp),
                                        axis=0).reshape(pixels_uint8.shape)
        if out is None:
            return result
        if not np.shares_memory(result, out):  # OpenCV reallocates a dst it cannot use; keep the contract
            out[...] = result
        return out
