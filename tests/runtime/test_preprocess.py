"""The one preprocessing module: decoding odd images, resize, channel order, (de)quantization."""

import cv2
import numpy as np
import pytest

from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.preprocess import (
    IMAGE_EXTENSIONS,
    FrameBuffers,
    InputConverter,
    InputSpec,
    dequantize_output,
    model_pixels_from_bgr,
    normalize,
    prepare_frame,
    prepare_image,
    quantize_input,
    read_image,
)
from edgecnn.tflite.metadata import ModelMetadata

INT8 = {"dtype": np.int8, "quantization": (1 / 127.5, 0)}
UINT8 = {"dtype": np.uint8, "quantization": (0.0123, 7)}
FLOAT = {"dtype": np.float32, "quantization": (0.0, 0)}


def _write(path, image):
    assert cv2.imwrite(str(path), image)
    return path


def test_read_image_colour_is_rgb(tmp_path):
    bgr = np.zeros((5, 7, 3), np.uint8)
    bgr[..., 0] = 200  # blue in OpenCV's BGR order
    rgb = read_image(_write(tmp_path / "blue.png", bgr))
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [0, 0, 200]


def test_read_image_converts_gray_rgba_and_16bit(tmp_path):
    gray = read_image(_write(tmp_path / "g.png", np.full((4, 4), 77, np.uint8)))
    assert gray.shape == (4, 4, 3) and gray[0, 0].tolist() == [77, 77, 77]

    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 180, 0  # red, fully transparent: alpha is dropped like Keras' decode_image
    rgba = read_image(_write(tmp_path / "a.png", bgra))
    assert rgba.shape == (4, 4, 3) and rgba[0, 0].tolist() == [180, 0, 0]

    deep = read_image(_write(tmp_path / "d.png", np.full((4, 4), 65535, np.uint16)))
    assert deep.dtype == np.uint8 and deep[0, 0].tolist() == [255, 255, 255]
    half = read_image(_write(tmp_path / "h.png", np.full((4, 4), 32896, np.uint16)))  # 128 * 257
    assert half[0, 0].tolist() == [128, 128, 128]


def test_read_image_odd_path_and_extensions(tmp_path):
    folder = tmp_path / "fötos ü"
    folder.mkdir()
    image = read_image(_write(folder / "bild 1.jpg", np.full((6, 6, 3), 90, np.uint8)))
    assert image.shape == (6, 6, 3)
    assert {".jpg", ".png", ".bmp", ".webp"} <= IMAGE_EXTENSIONS


def test_read_image_errors_are_data_errors(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(DataError, match="cannot decode image .*broken.jpg"):
        read_image(bad)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="cannot decode"):
        read_image(empty)
    with pytest.raises(DataError, match="cannot read image .*missing.png"):
        read_image(tmp_path / "missing.png")


def test_input_spec_validation_and_construction():
    md = ModelMetadata(labels=["a", "b"], height=12, width=10, channels=1, channel_order="GRAY", mean=[0.0], std=[255.0])
    spec = InputSpec.from_metadata(md)
    assert (spec.height, spec.width, spec.channels, spec.channel_order) == (12, 10, 1, "GRAY")
    assert spec.mean == (0.0,) and spec.std == (255.0,)

    flags = InputSpec.from_input_shape([1, 32, 24, 3], channel_order="BGR", mean=[0.0], std=[1.0])
    assert (flags.height, flags.width, flags.channel_order) == (32, 24, "BGR")
    assert flags.mean == (0.0, 0.0, 0.0)  # one value broadcast to every channel
    assert InputSpec.from_input_shape([1, 8, 8, 1]).channel_order == "GRAY"

    with pytest.raises(ModelError, match="does not fit a 3-channel input"):
        InputSpec(8, 8, channels=3, channel_order="GRAY")
    with pytest.raises(ModelError, match="std must not contain 0"):
        InputSpec(8, 8, std=(1.0, 0.0, 1.0))
    with pytest.raises(ModelError, match="mean has 2 values"):
        InputSpec(8, 8, mean=(1.0, 2.0))
    with pytest.raises(ModelError, match="resize method 'cubic'"):
        InputSpec(8, 8, resize="cubic")
    with pytest.raises(ModelError, match="not an image"):
        InputSpec.from_input_shape([1, 100])


def test_prepare_image_normalizes_in_channel_order():
    rgb = np.zeros((16, 16, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 255, 127, 0
    out = prepare_image(rgb, InputSpec(8, 8))
    assert out.shape == (8, 8, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, 0], [1.0, -0.5 / 127.5, -1.0], rtol=1e-6)
    bgr_model = prepare_image(rgb, InputSpec(8, 8, channel_order="BGR", mean=(0,), std=(255,)))
    np.testing.assert_allclose(bgr_model[0, 0], [0.0, 127 / 255, 1.0], rtol=1e-6)
    gray = prepare_image(rgb, InputSpec(8, 8, 1, "GRAY", (0,), (1,)))
    assert gray.shape == (8, 8, 1)
    assert gray[0, 0, 0] == pytest.approx(cv2.cvtColor(rgb[:1, :1], cv2.COLOR_RGB2GRAY)[0, 0])


def test_prepare_frame_equals_prepare_image_of_the_same_picture():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    for spec in (InputSpec(12, 16), InputSpec(12, 16, channel_order="BGR"), InputSpec(12, 16, 1, "GRAY")):
        np.testing.assert_array_equal(prepare_frame(bgr, spec), prepare_image(rgb, spec))


def test_resize_uses_area_when_shrinking_and_linear_when_growing():
    # A 2x2 checkerboard shrunk to 1x1 by area averaging is the exact mean; growing keeps the corners.
    board = np.array([[[0] * 3, [255] * 3], [[255] * 3, [0] * 3]], np.uint8)
    small = prepare_image(np.kron(board, np.ones((4, 4, 1), np.uint8)), InputSpec(1, 1, mean=(0,), std=(1,)))
    assert small[0, 0].tolist() == pytest.approx([128.0] * 3, abs=1)
    grown = prepare_image(board, InputSpec(4, 4, mean=(0,), std=(1,)))
    assert grown[0, 0, 0] == 0 and grown[0, 3, 0] == 255


def test_prepare_rejects_non_uint8_images():
    with pytest.raises(DataError, match="HxWx3 uint8"):
        prepare_image(np.zeros((8, 8, 3), np.float32), InputSpec(4, 4))
    with pytest.raises(DataError, match="camera frame"):
        prepare_frame(np.zeros((8, 8), np.uint8), InputSpec(4, 4))


def test_quantize_input_uses_scale_zero_point_and_clips():
    x = np.array([-2.0, 0.0, 0.5, 1.0, 3.0], np.float32)
    q = quantize_input(x, INT8)
    assert q.dtype == np.int8
    assert q.tolist() == [-128, 0, 64, 127, 127]  # out-of-range values clip to the int8 range
    u = quantize_input(np.array([0.0, -1.0]), UINT8)
    assert u.dtype == np.uint8 and u.tolist() == [7, 0]
    f = quantize_input(x.astype(np.float64), FLOAT)
    assert f.dtype == np.float32 and f.tolist() == x.tolist()
    with pytest.raises(ModelError, match="without quantization parameters"):
        quantize_input(x, {"dtype": np.int8, "quantization": (0.0, 0)})


def test_dequantize_output():
    raw = np.array([-128, 0, 127], np.int8)
    out = dequantize_output(raw, {"dtype": np.int8, "quantization": (1 / 256, -128)})
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.0, 0.5, 255 / 256])
    assert dequantize_output(np.array([0.25]), FLOAT).tolist() == [0.25]


@pytest.mark.parametrize("detail", [INT8, UINT8, FLOAT, {"dtype": np.float16, "quantization": (0.0, 0)}])
@pytest.mark.parametrize("spec", [InputSpec(6, 6), InputSpec(6, 6, 1, "GRAY", (0,), (255,)),
                                  InputSpec(6, 6, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4))])
def test_fast_converter_is_bit_identical_to_reference(spec, detail):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (6, 6, spec.channels), dtype=np.uint8)
    pixels[0, 0], pixels[0, 1] = 0, 255  # both ends of the range
    fast = InputConverter(spec, detail)(pixels)
    reference = quantize_input(normalize(pixels, spec), detail)
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    np.testing.assert_array_equal(fast, reference)


# Every input type the converter serves, with scales that clip at one or both ends of the range.
_QUANTIZED = [INT8, UINT8, FLOAT, {"dtype": np.int8, "quantization": (0.02, -5)},
              {"dtype": np.uint8, "quantization": (1 / 255, 0)}]
_NORMALIZATIONS = [((127.5,), (127.5,)), ((0.0,), (255.0,)), ((0.0,), (1.0,)),
                   ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)), ((10.0, 128.0, 250.0), (-3.0, 64.0, 0.5))]


@pytest.mark.parametrize("detail", _QUANTIZED, ids=lambda d: f"{np.dtype(d['dtype']).name}-{d['quantization']}")
@pytest.mark.parametrize("mean,std", _NORMALIZATIONS)
@pytest.mark.parametrize("order", ["RGB", "GRAY"])
def test_lookup_table_is_exact_for_every_pixel_value_of_every_channel(detail, mean, std, order):
    channels = 1 if order == "GRAY" else 3
    if channels == 1:
        mean, std = mean[:1], std[:1]
    spec = InputSpec(16, 16, channels, order, mean, std)
    # Each channel runs through all 256 values, each channel in a different order (catches a
    # table applied to the wrong channel).
    levels = np.arange(256)
    pixels = np.stack([(levels * (2 * c + 1) + 37 * c) % 256 for c in range(channels)], axis=-1)
    pixels = pixels.astype(np.uint8).reshape(16, 16, channels)
    assert all(len(np.unique(pixels[..., c])) == 256 for c in range(channels))
    reference = quantize_input(normalize(pixels, spec), detail)  # the arithmetic, element by element
    converter = InputConverter(spec, detail)
    fast = converter(pixels)
    assert fast.dtype == reference.dtype and fast.shape == reference.shape
    np.testing.assert_array_equal(fast, reference)
    out = np.full(reference.shape, 99, reference.dtype)
    assert converter(pixels, out) is out
    np.testing.assert_array_equal(out, reference)


@pytest.mark.parametrize("order", ["RGB", "BGR", "GRAY"])
def test_frame_buffers_are_reused_and_give_the_same_pixels(order):
    spec = InputSpec(12, 10, 1 if order == "GRAY" else 3, order)
    buffers = FrameBuffers(spec)
    rng = np.random.default_rng(3)
    for shape in [(48, 64, 3), (48, 64, 3), (30, 31, 3)]:
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        fast = model_pixels_from_bgr(frame, spec, buffers)
        np.testing.assert_array_equal(fast, model_pixels_from_bgr(frame, spec))
        final = buffers.resized if buffers.converted is None else buffers.converted
        assert np.shares_memory(fast, final)  # written into the preallocated image, not a new one
