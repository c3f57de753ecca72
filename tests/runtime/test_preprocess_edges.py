"""Edges of the preprocessing module that the mutation score (tools/mutation_score.sh) found untested:
pixel types from real files, colour layouts, defaults, interpolation choice and the numpy lookup path.
Every expectation is derived from OpenCV or from arithmetic on the input, not copied from the code."""

import cv2
import numpy as np
import pytest

from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.preprocess import (
    CHANNEL_ORDERS,
    RESIZE_METHODS,
    InputConverter,
    InputSpec,
    decode_image,
    dequantize_output,
    image_files,
    model_pixels_from_bgr,
    normalize,
    prepare_image,
    quantize_input,
    read_image,
    resize_uint8,
    to_rgb_uint8,
)
from edgecnn.tflite.metadata import ModelMetadata


def _encoded(image, ext=".png") -> bytes:
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def test_decode_image_of_bytes_equals_opencvs_decode_in_rgb_order():
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    data = _encoded(bgr)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    for given in (data, bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        np.testing.assert_array_equal(decode_image(given), expected)


def test_every_16_bit_level_maps_to_the_nearest_8_bit_level(tmp_path):
    levels = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    path = tmp_path / "deep.png"
    assert cv2.imwrite(str(path), levels)
    got = read_image(path)[..., 0].astype(np.int64)
    # nearest of the 256 levels k * 257 (65535 / 255 = 257): never a half-way tie, so rint is exact
    np.testing.assert_array_equal(got, np.rint(levels / 257.0).astype(np.int64))


def test_float_tiff_pixels_are_scaled_rounded_and_clipped(tmp_path):
    values = np.array([[0.0, 0.25, 0.5, 0.6, 1.0, -0.5, 1.5]], np.float32)
    path = tmp_path / "float.tiff"
    assert cv2.imwrite(str(path), np.dstack([values] * 3))
    got = read_image(path)[0, :, 0].tolist()
    # 0..1 spans 0..255; 63.75 -> 64, 127.5 -> 128 (nearest, ties to even), 153; outside 0..1 is clipped
    assert got == [0, 64, 128, 153, 255, 0, 255]


def test_an_unsupported_pixel_type_names_the_file_and_the_type(tmp_path):
    path = tmp_path / "counts.tiff"
    assert cv2.imwrite(str(path), np.ones((2, 2, 3), np.int32))
    with pytest.raises(DataError, match=r"counts\.tiff has pixel type int32; save it as 8- or 16-bit"):
        read_image(path)
    with pytest.raises(DataError, match=r"^upload\.tiff has pixel type int32"):
        decode_image(path.read_bytes(), name="upload.tiff")


def test_gray_with_a_channel_axis_and_bgra_become_rgb():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4, 1)
    np.testing.assert_array_equal(to_rgb_uint8(gray), np.repeat(gray, 3, axis=2))
    rng = np.random.default_rng(1)
    bgra = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_uint8(bgra), bgra[..., 2::-1])  # alpha dropped, B and R swapped


@pytest.mark.parametrize("shape", [(3, 4, 2), (3, 4, 5), (3, 4, 3, 1)])
def test_other_layouts_are_refused_with_the_name_and_shape(shape):
    with pytest.raises(DataError, match=rf"^frame\.png has shape \({', '.join(map(str, shape))}\); expected"):
        to_rgb_uint8(np.zeros(shape, np.uint8), name="frame.png")


def test_input_spec_refuses_a_zero_height_or_width_alone():
    for height, width in ((0, 8), (8, 0)):
        with pytest.raises(ModelError, match=rf"input size {height}x{width} is not usable"):
            InputSpec(height, width)


def test_input_spec_refusals_say_how_to_fix_them():
    with pytest.raises(ModelError, match=r"^channel order GRAY does not fit a 3-channel input; "
                                         r"use GRAY for 1 channel, RGB or BGR for 3$"):
        InputSpec(8, 8, channels=3, channel_order="GRAY")
    with pytest.raises(ModelError, match=r"^std must not contain 0$"):
        InputSpec(8, 8, std=(1.0, 0.0, 1.0))
    with pytest.raises(ModelError, match=r"is not an image \(N, height, width, 1 or 3 channels\); "
                                         r"edgecnn runs image classifiers only$"):
        InputSpec.from_input_shape([1, 8, 8, 2])
    for detail in ({"dtype": np.uint8},):
        with pytest.raises(ModelError, match=r"; export with float32 or int8/uint8 \(quantized\) input$"):
            quantize_input(np.zeros(2, np.float32), detail)
        with pytest.raises(ModelError, match=r"; export with float32 or quantized int8/uint8 output$"):
            dequantize_output(np.zeros(2, np.uint8), detail)


def test_flags_for_a_model_without_metadata_are_all_used():
    spec = InputSpec.from_input_shape([1, 4, 4, 3], mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0], resize="nearest")
    assert (spec.mean, spec.std, spec.resize) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0), "nearest")


def test_input_spec_errors_list_the_valid_choices():
    with pytest.raises(ModelError) as caught:
        InputSpec(8, 8, channel_order="YUV")
    assert "'YUV'" in str(caught.value) and ", ".join(CHANNEL_ORDERS) in str(caught.value)
    with pytest.raises(ModelError) as caught:
        InputSpec(8, 8, resize="cubic")
    assert ", ".join(RESIZE_METHODS) in str(caught.value)


def test_metadata_without_a_resize_method_means_area_and_a_given_one_is_kept():
    fields = dict(labels=["a", "b"], height=4, width=4, channels=3, channel_order="RGB", mean=[0.0], std=[1.0])
    assert InputSpec.from_metadata(ModelMetadata(**fields, resize=None)).resize == "area"
    assert InputSpec.from_metadata(ModelMetadata(**fields, resize="nearest")).resize == "nearest"


def test_a_model_without_metadata_gets_rgb_and_inputs_in_minus_one_to_one():
    spec = InputSpec.from_input_shape([1, 2, 2, 3])
    assert spec.channel_order == "RGB"
    rgb = np.array([[[0, 255, 0], [255, 0, 255]]] * 2, np.uint8)
    np.testing.assert_allclose(prepare_image(rgb, spec), rgb / 127.5 - 1.0, rtol=1e-6)


@pytest.mark.parametrize("source, target, method, interpolation", [
    ((30, 30), (10, 10), "area", cv2.INTER_AREA),      # shrinking both ways
    ((10, 30), (10, 10), "area", cv2.INTER_AREA),      # same height, narrower: still shrinking
    ((30, 10), (10, 10), "area", cv2.INTER_AREA),
    ((30, 5), (10, 10), "area", cv2.INTER_LINEAR),     # shorter but wider: not a shrink
    ((5, 5), (10, 10), "area", cv2.INTER_LINEAR),      # growing
    ((30, 30), (10, 10), "linear", cv2.INTER_LINEAR),
    ((30, 30), (10, 10), "nearest", cv2.INTER_NEAREST),
])
def test_resize_picks_the_interpolation_for_the_direction(source, target, method, interpolation):
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (*source, 3), dtype=np.uint8)  # noise: every interpolation differs
    spec = InputSpec(*target, resize=method)
    expected = cv2.resize(image, (target[1], target[0]), interpolation=interpolation)
    np.testing.assert_array_equal(resize_uint8(image, spec), expected)
    others = {cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_NEAREST} - {interpolation}
    assert all(not np.array_equal(cv2.resize(image, (target[1], target[0]), interpolation=o), expected)
               for o in others)  # the case tells the methods apart


def test_bad_image_messages_say_which_input_and_what_it_was():
    with pytest.raises(DataError, match=r"^RGB image must be an HxWx3 uint8 array, got shape \(4, 4, 3\) of float32"):
        prepare_image(np.zeros((4, 4, 3), np.float32), InputSpec(2, 2))
    with pytest.raises(DataError, match=r"^camera frame must be an HxWx3 uint8 array, got shape None of list"):
        model_pixels_from_bgr([[0, 0, 0]], InputSpec(2, 2))


def test_an_integer_tensor_without_quantization_is_refused_not_read_raw():
    for detail in ({"dtype": np.int8}, {"dtype": np.int8, "quantization": (0.0, 0)}):
        with pytest.raises(ModelError, match="model output is int8 without quantization parameters"):
            dequantize_output(np.array([1, 2], np.int8), detail)
        with pytest.raises(ModelError, match="model input is int8 without quantization parameters"):
            quantize_input(np.zeros(2, np.float32), detail)
    # scale 1, zero point 0 is a real quantization: the raw values are the scores
    assert dequantize_output(np.array([-3, 5], np.int8), {"dtype": np.int8, "quantization": (1.0, 0)}).tolist() == [-3, 5]


def test_float16_output_is_returned_as_float32():
    out = dequantize_output(np.array([0.5, 0.25], np.float16), {"dtype": np.float16})
    assert out.dtype == np.float32 and out.tolist() == [0.5, 0.25]


def test_float16_input_converter_fills_the_given_buffer_like_the_reference_path():
    spec = InputSpec(3, 4, mean=(10.0, 20.0, 30.0), std=(50.0, 60.0, 70.0))
    detail = {"dtype": np.float16}
    pixels = np.random.default_rng(3).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    expected = quantize_input(normalize(pixels, spec), detail)
    converter = InputConverter(spec, detail)
    assert converter.dtype == np.float16
    np.testing.assert_array_equal(converter(pixels), expected)
    out = np.full((3, 4, 3), np.nan, np.float16)
    assert converter(pixels, out=out) is out
    np.testing.assert_array_equal(out, expected)


def test_image_files_without_recursion_lists_only_the_top_folder(tmp_path):
    for path in (tmp_path / "top.png", tmp_path / "sub" / "deep.png"):
        path.parent.mkdir(exist_ok=True)
        assert cv2.imwrite(str(path), np.zeros((2, 2, 3), np.uint8))
    assert [p.name for p in image_files(tmp_path, recursive=False)[0]] == ["top.png"]
    assert sorted(p.name for p in image_files(tmp_path)[0]) == ["deep.png", "top.png"]
