"""The model and clip the device benchmarks run on: MobileNetV1 0.25 at 96x96, full-integer int8.

Building the model needs TensorFlow, so it runs in a child process and is cached: the
benchmark processes themselves stay TensorFlow-free, as on a device. The weights are random
(the benchmarks time the pipeline, not accuracy); the architecture and int8 conversion are the
real ones from edgecnn's registry.

    python tools/bench_model.py [--out /tmp/edgecnn-bench]     # writes model_int8_96.tflite, clip_640x480.avi
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

DEFAULT_DIR = Path("/tmp/edgecnn-bench")
LABELS = [f"class{i}" for i in range(10)]

_BUILD = r"""
import sys
import numpy as np
from edgecnn.training.keras_compat import tf
from edgecnn.training.models.mobilenet import build_model
from edgecnn.tflite.metadata import ModelMetadata, embed_metadata

out, size = sys.argv[1], int(sys.argv[2])
family, alpha = (sys.argv[3], float(sys.argv[4])) if len(sys.argv) > 3 else ("mobilenet_v1", 0.25)
model = build_model(family, num_classes=10, size=size, alpha=alpha)
rng = np.random.default_rng(0)

def representative():
    for _ in range(32):
        yield [rng.uniform(-1, 1, (1, size, size, 3)).astype(np.float32)]

converter = tf.lite.TFLiteConverter.from_keras_model(model)
converter.optimizations = [tf.lite.Optimize.DEFAULT]
converter.representative_dataset = representative
converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
converter.inference_input_type = tf.int8
converter.inference_output_type = tf.int8
data = converter.convert()
md = ModelMetadata(labels=[f"class{i}" for i in range(10)], height=size, width=size, model_name=f"{family}_{alpha}",
                   quantization="int8", quantization_source="ptq")
open(out, "wb").write(embed_metadata(data, md))
"""


def ensure_model(folder: Path = DEFAULT_DIR, size: int = 96, family: str = "mobilenet_v1", alpha: float = 0.25) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    default = (family, alpha) == ("mobilenet_v1", 0.25)
    path = folder / (f"model_int8_{size}.tflite" if default else f"model_int8_{family}_{alpha}_{size}.tflite")
    if not path.exists():
        print(f"building {path} (TensorFlow, in a child process) ...", file=sys.stderr)
        subprocess.run([sys.executable, "-c", _BUILD, str(path), str(size), family, str(alpha)], check=True)
    return path


def ensure_clip(folder: Path = DEFAULT_DIR, size=(640, 480), frames: int = 300, fps: float = 30.0,
                fourcc: str = "MJPG") -> Path:
    """A clip (MJPG .avi, or mp4v .mp4) with moving content (so the decoder does real work on every frame)."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".avi" if fourcc == "MJPG" else f"_{fourcc}.mp4"
    path = folder / f"clip_{size[0]}x{size[1]}_{frames}{suffix}"
    if path.exists():
        return path
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    for i in range(frames):
        frame = np.empty((h, w, 3), np.uint8)
        frame[..., 0] = (xx + 3 * i) % 256
        frame[..., 1] = (yy + 2 * i) % 256
        frame[..., 2] = ((xx + yy) // 2 + i) % 256
        cv2.circle(frame, (int(w / 2 + w / 3 * np.sin(i / 15)), h // 2), h // 5, (255, 255, 255), -1)
        writer.write(frame)
    writer.release()
    return path


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    print(ensure_model(args.out))
    print(ensure_clip(args.out))
