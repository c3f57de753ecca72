"""Models and inputs for tools/pi_emulation.sh, made on the host (no TensorFlow).

Writes into OUT: int8.tflite and fp32.tflite (the tiny pool -> fully-connected -> softmax
classifiers of tests/tflite_models.py, whose answers are known), images/<class>/*.png
(lossless, so host and guest decode the same pixels; some with exactly tied classes:
gray pixels tie all three, R == G ties two) and clip.avi (a short MJPG video).

    python tools/pi_emulation_inputs.py OUT
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tflite_models import write_model  # noqa: E402  (a test helper, not part of the package)

LABELS = ("red", "green", "blue")


def _images(folder: Path, rng: np.random.Generator) -> int:
    rgb_pixels = [rng.integers(0, 256, 3) for _ in range(24)]
    rgb_pixels += [np.full(3, v) for v in (0, 64, 127, 128, 200, 255)]  # all three classes tied
    rgb_pixels += [np.array([v, v, 255 - v]) for v in (140, 180, 230)]  # red == green, ahead of blue
    rgb_pixels += [np.array([30, v, v]) for v in (90, 170, 250)]  # green == blue, ahead of red
    for i, pixel in enumerate(rgb_pixels):
        label = LABELS[int(np.argmax(pixel))]
        noise = rng.integers(-3, 4, (16, 16, 3)) if i < 24 else 0  # tied images stay exactly uniform
        rgb = np.clip(pixel + noise, 0, 255).astype(np.uint8) * np.ones((16, 16, 1), np.uint8)
        (folder / label).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / label / f"{i:02d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return len(rgb_pixels)


def _clip(path: Path, frames: int = 24) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 12, (64, 48))
    if not writer.isOpened():
        raise SystemExit(f"OpenCV cannot write MJPG to {path}")
    for i in range(frames):
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[:] = ((i * 10) % 256, 255 - (i * 10) % 256, 128)
        writer.write(frame)
    writer.release()


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_model(out / "int8.tflite", labels=LABELS, kind="int8")
    write_model(out / "fp32.tflite", labels=LABELS, kind="float")
    count = _images(out / "images", np.random.default_rng(19))
    _clip(out / "clip.avi")
    print(f"inputs: 2 models, {count} images, 24-frame clip in {out}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: pi_emulation_inputs.py OUT")
    main(Path(sys.argv[1]))
