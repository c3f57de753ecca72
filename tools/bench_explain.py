"""Cost per frame of the TF-free class activation map, next to plain classification. Not a test: prints figures.

    python tools/bench_explain.py [--runs 5] [--frames 200] [--threads 2]

Model: the 96x96 reference (MobileNetV1 0.25, full-integer int8; tools/bench_model.py builds it).
Frames: 640x480 BGR noise (decoding is left out: it is the same with or without the overlay).
Per frame, side by side in each run:
  classify   TFLiteClassifier.predict_frame (preprocess + invoke + dequantize)
  cam        TFLiteExplainer.explain_frame (the same, plus the feature map output and W @ F)
  overlay    cam + blending the map onto the 640x480 frame (resize, colour map, addWeighted)
Median per-frame time over --runs runs after one warm-up run, the three steps interleaved frame by
frame (time.perf_counter).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import ensure_model  # noqa: E402

from edgecnn.runtime.classifier import TFLiteClassifier  # noqa: E402
from edgecnn.runtime.explain.explainer import TFLiteExplainer  # noqa: E402
from edgecnn.runtime.explain.heatmaps import overlay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model = ensure_model()
    classifier = TFLiteClassifier(model, threads=args.threads)
    explainer = TFLiteExplainer(model, threads=args.threads)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(args.frames)]
    steps = {
        "classify": classifier.predict_frame,
        "cam": explainer.explain_frame,
        "overlay": lambda f: overlay(f, explainer.explain_frame(f).heatmap, bgr=True),
    }
    # Interleaved frame by frame, so that load from other processes falls on all three alike.
    results = {name: [] for name in steps}
    for run in range(args.runs + 1):
        for frame in frames:
            for name, step in steps.items():
                start = time.perf_counter()
                step(frame)
                if run:  # run 0 warms up
                    results[name].append((time.perf_counter() - start) * 1000)
    median = {name: statistics.median(values) for name, values in results.items()}
    report = {"model": str(model), "method": explainer.method, "threads": args.threads, "runs": args.runs,
              "frames": args.frames, "ms_per_frame": {k: round(v, 4) for k, v in median.items()},
              "cam_overhead": round(median["cam"] / median["classify"] - 1, 3),
              "overlay_overhead": round(median["overlay"] / median["classify"] - 1, 3)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
