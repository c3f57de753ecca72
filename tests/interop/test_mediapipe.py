"""Interop with a real reader of standard metadata: MediaPipe Tasks' ImageClassifier (mediapipe 1.2.x,
in a venv of its own, see mediapipe_venv.py) loads edgecnn's exports, finds their labels and agrees
with ``edgecnn classify`` on real digit images.

The images are written at the model's own size (16x16), so neither side resizes: what is compared
is the preprocessing each applies from the metadata (NormalizationOptions for float inputs, the
input's quantization for the uint8 one) and the inference, not two resize kernels.
"""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.interop.mediapipe_venv import mediapipe_python

SCRIPT = Path(__file__).with_name("mediapipe_classify.py")
EXPORTS = {"fp32": dict(quantize="none"), "fp16": dict(quantize="fp16"), "uint8": dict(quantize="int8", io="uint8")}


@pytest.fixture(scope="module")
def digit_images(tmp_path_factory):
    """The last 200 scikit-learn digits (8x8, 0..16) as 16x16 RGB PNGs."""
    import cv2
    from sklearn.datasets import load_digits

    root = tmp_path_factory.mktemp("mp-digits")
    paths = []
    for i, image in enumerate(load_digits().images[-200:]):
        pixels = np.clip(image * 16, 0, 255).astype(np.uint8).repeat(2, 0).repeat(2, 1)
        paths.append(root / f"{i:03d}.png")
        cv2.imwrite(str(paths[-1]), np.repeat(pixels[..., None], 3, axis=2))
    return paths


def _export(run, name, tmp_path_factory):
    from edgecnn.training.export.exporter import ExportOptions, export

    out = tmp_path_factory.mktemp(f"mp-{name}") / f"model_{name}.tflite"
    return export(run, ExportOptions(out=out, compile_edgetpu=False, **EXPORTS[name])).path


def _mediapipe(model, images):
    python = mediapipe_python()
    done = subprocess.run([str(python), str(SCRIPT), str(model), *map(str, images)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["results"]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_mediapipe_image_classifier_reads_edgecnn_exports(tiny_run, digit_images, tmp_path_factory, name):
    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.runtime.preprocess import read_image

    model = _export(tiny_run.path, name, tmp_path_factory)
    classifier = TFLiteClassifier(model, threads=1)
    ours = np.stack([classifier.predict_image(read_image(p)) for p in digit_images])
    theirs = _mediapipe(model, digit_images)
    their_scores = np.array([r["scores"] for r in theirs], dtype=np.float32)
    assert [r["name"] for r in theirs] == [classifier.labels[r["index"]] for r in theirs]  # labels found
    agreement = float(np.mean(ours.argmax(1) == np.array([r["index"] for r in theirs])))
    diff = float(np.abs(ours - their_scores).max())
    print(f"{name}: top-1 agreement {agreement:.4f} on {len(digit_images)} images, max |score diff| {diff:.3g}")
    if name == "uint8":
        scale, zero_point = classifier.input_detail["quantization"]
        print(f"uint8: input scale {scale!r}, zero point {zero_point}; metadata mean {classifier.metadata.mean[0]!r}, "
              f"std {classifier.metadata.std[0]!r}")
        assert classifier.metadata.mean[0] == zero_point and abs(classifier.metadata.std[0] * scale - 1) < 1e-6
        # MediaPipe feeds raw pixels; edgecnn's own preprocessing must produce exactly those bytes.
        for path in digit_images:
            rgb = read_image(path)
            np.testing.assert_array_equal(classifier.preprocess_image(rgb)[0], rgb)
        assert agreement == 1.0 and diff == 0.0
    else:
        # Same float32 graph, different invocations: measured max 2.2e-06 (fp32) and 1.5e-06 (fp16) on these
        # 200 images, a few float32 ulps of scores in 0..1; the bound leaves 4x room.
        assert agreement == 1.0 and diff < 1e-5
