"""The header readers against real encoder output (OpenCV's libjpeg and libpng), and the pixel cap."""

import cv2
import numpy as np
import pytest

from edgecnn.errors import RequestRejected
from edgecnn.runtime.preprocess import read_image
from edgecnn.serve.images import decode_upload, image_size, sniff_format

SIZES = [(1, 1), (37, 5), (640, 480), (1000, 3)]


def encode(width, height, ext, params=()):
    rng = np.random.default_rng(width * 7 + height)
    pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    ok, data = cv2.imencode(ext, pixels, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("ext,params,kind", [
    (".png", (), "PNG"),
    (".jpg", (), "JPEG"),
    (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), "JPEG"),  # SOF2, not SOF0
])
def test_header_size_matches_what_the_encoder_wrote(width, height, ext, params, kind):
    data = encode(width, height, ext, params)
    assert sniff_format(data) == kind
    assert image_size(data, kind) == (width, height)


def test_pixel_cap_is_inclusive_and_checked_from_the_header():
    data = encode(40, 30, ".png")
    assert decode_upload(data, max_pixels=1200).shape == (30, 40, 3)
    with pytest.raises(RequestRejected) as info:
        decode_upload(data, max_pixels=1199)
    assert info.value.status == 413 and "40x30 = 1200 pixels" in str(info.value)


def test_decoded_upload_is_what_classify_reads_from_a_file(tmp_path):
    data = encode(50, 20, ".jpg")
    path = tmp_path / "x.jpg"
    path.write_bytes(data)
    assert np.array_equal(decode_upload(data, max_pixels=10**6), read_image(path))


@pytest.mark.parametrize("data,status", [
    (b"", 400), (b"GIF89a....", 415), (b"\xff\xd8\xff", 400), (b"\x89PNG\r\n\x1a\n\x00\x00", 400),
    (b"\xff\xd8\xff\xda\x00\x02", 400),  # scan before any frame header
])
def test_malformed_headers_are_refused(data, status):
    with pytest.raises(RequestRejected) as info:
        decode_upload(data, max_pixels=10**6)
    assert info.value.status == status
