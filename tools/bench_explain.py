"""Cost per frame of ``edgecnn run --explain`` next to the same loop without it. Not a test: prints figures.

    python tools/bench_explain.py [--runs 30] [--frames 60] [--threads 2]

Model: the 96x96 reference (MobileNetV1 0.25, full-integer int8; tools/bench_model.py builds it, with
TensorFlow, in a child process). Frames: 640x480 BGR from an in-memory source (no decoding, which
would cost the same either way and only shrink the ratio). The loop is ``run_loop`` itself, inline
(the mode ``auto`` keeps for this model on 2 cores), through two kinds of output:

  draw    in-memory frames, the overlay drawn on every frame (what the window does, without imshow)
  clip    the same on frames decoded from a 640x480 MJPG clip (what a USB camera's MJPG stream costs)
  record  in-memory frames, the overlay drawn and written to an MJPG .avi (``--record``)

``plain`` is ``TFLiteClassifier``; ``explain`` is ``CamClassifier`` (the same model with the final
feature map as a second output of the same invoke, the CAM formed per frame and blended into the
frame before the text); ``explain_every_3`` recolours the heatmap every third frame (``--explain-every 3``). Each run times all nine (output x classifier) back to back in short passes, in an
order that rotates every run (short passes, so that a plain pass and its explain pass see the same load);
run 0 is a warm-up. Figures: median over runs of the wall time per frame, of each run's own
explain/plain ratio, and of the overlay's own cost from the loop's stage times (the extra inference
and output milliseconds of the explain pass over its plain pass, against the plain frame time). The
load average is printed: on a shared machine only the side-by-side ratios mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import ensure_clip, ensure_model  # noqa: E402

from edgecnn.runtime.classifier import TFLiteClassifier  # noqa: E402
from edgecnn.runtime.explain.live import CamClassifier  # noqa: E402
from edgecnn.runtime.live.loop import LoopOptions, run_loop  # noqa: E402
from edgecnn.runtime.live.overlay import RecordOutput, annotated  # noqa: E402
from edgecnn.runtime.live.sources import SyntheticSource, parse_source  # noqa: E402

OUTPUTS = ("draw", "clip", "record")


class DrawOutput:
    """The window's work without a display: the overlay (and with --explain the heatmap) drawn."""

    def write(self, result) -> bool:
        annotated(result)
        return True

    def close(self, summary: dict) -> None:
        pass


def time_loop(classifier, output_kind: str, frames: int, folder: Path, clip: Path) -> tuple[float, dict]:
    """(wall ms per frame, the loop's mean stage ms) for one pass over ``frames`` 640x480 frames."""
    output = RecordOutput(folder / "bench.avi", fps=30.0) if output_kind == "record" else DrawOutput()
    source = parse_source(str(clip)) if output_kind == "clip" else \
        SyntheticSource(size=(480, 640), live=False, count=frames)
    started = time.perf_counter()
    summary = run_loop(classifier, source, [output], LoopOptions(mode="inline", max_frames=frames))
    elapsed = time.perf_counter() - started
    return elapsed * 1e3 / summary["frames"], summary["stages_ms"]


def _stage_sum(stage_ms: dict) -> float:
    """The stages --explain changes: inference (the feature map read, W . F) and output (the blend)."""
    return stage_ms["inference"] + stage_ms["output"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    model, clip = ensure_model(), ensure_clip()
    classifiers = {"plain": TFLiteClassifier(model, threads=args.threads),
                   "explain": CamClassifier(model, threads=args.threads),
                   "explain_every_3": CamClassifier(model, threads=args.threads, refresh=3)}
    configs = [(out, name) for out in OUTPUTS for name in classifiers]
    per_frame = {c: [] for c in configs}
    stages = {c: [] for c in configs}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs + 1):
            shift = run % len(configs)
            for config in configs[shift:] + configs[:shift]:
                ms, stage_ms = time_loop(classifiers[config[1]], config[0], args.frames, Path(tmp), clip)
                if run:  # run 0 warms up
                    per_frame[config].append(ms)
                    stages[config].append(stage_ms)
            load.append(os.getloadavg()[0])
    report = {"model": str(model), "frames": "640x480", "threads": args.threads, "runs": args.runs,
              "frames_per_run": args.frames, "load_average_1min": [round(v, 2) for v in load], "outputs": {}}
    for out in OUTPUTS:
        plain = per_frame[(out, "plain")]
        report["outputs"][out] = {"plain_ms_per_frame": round(statistics.median(plain), 4)}
        for name in list(classifiers)[1:]:
            explain = per_frame[(out, name)]
            ratios = [e / p - 1 for e, p in zip(explain, plain)]
            extra = [(_stage_sum(se) - _stage_sum(sp)) / p
                     for se, sp, p in zip(stages[(out, name)], stages[(out, "plain")], plain)]
            report["outputs"][out][name] = {
                "ms_per_frame": round(statistics.median(explain), 4),
                "overhead_median": round(statistics.median(ratios), 3),
                "overhead_quartiles": [round(float(q), 3) for q in statistics.quantiles(ratios, n=4)],
                "overlay_stage_cost_median": round(statistics.median(extra), 3)}
        report["outputs"][out].update({
            "stage_ms_median": {name: {stage: round(statistics.median(s[stage] for s in stages[(out, name)]), 4)
                                       for stage in ("capture", "preprocess", "inference", "postprocess", "output")}
                                for name in classifiers}})
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
