"""Benchmarks of the camera loop (issue 5's performance targets). Not a test: prints figures.

    python tools/bench_loop.py overhead [--runs 5]   # pipeline FPS vs the slowest stage alone, same run
    python tools/bench_loop.py latency  [--runs 5]   # capture-to-result vs preprocess + inference, fast camera
    python tools/bench_loop.py soak [--frames 20000] # RSS growth and open fds over a looping video

Model: MobileNetV1 0.25, 96x96, full-integer int8 (tools/bench_model.py builds it once, in a
child process). Clip: 640x480 MJPG with moving content. Each figure is the median over
``--runs`` runs after a warm-up run; ratios are measured side by side within each run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import DEFAULT_DIR, ensure_clip, ensure_model  # noqa: E402

EDGECNN = str(Path(sys.executable).with_name("edgecnn"))


def _median(values):
    return statistics.median(values)


# --- loop overhead --------------------------------------------------------------------------

def _cpu_s(who=resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def stage_alone(classifier, clip: Path, repeat: int) -> tuple[dict, dict]:
    """Frames per second each stage reaches alone (decode the whole clip, preprocess, invoke),
    and the CPU milliseconds each spends per frame (all threads)."""
    import cv2

    fps, cpu_ms = {}, {}
    capture = cv2.VideoCapture(str(clip))
    frames, decoded = [], 0
    started, cpu = time.perf_counter(), _cpu_s()
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        decoded += 1
        if len(frames) < 60:
            frames.append(frame)
    fps["decode"], cpu_ms["decode"] = decoded / (time.perf_counter() - started), (_cpu_s() - cpu) * 1e3 / decoded
    capture.release()

    started, cpu = time.perf_counter(), _cpu_s()
    for i in range(repeat):
        tensor = classifier.preprocess_frame(frames[i % len(frames)])
    fps["preprocess"], cpu_ms["preprocess"] = repeat / (time.perf_counter() - started), (_cpu_s() - cpu) * 1e3 / repeat

    started, cpu = time.perf_counter(), _cpu_s()
    for _ in range(repeat):
        classifier.infer(tensor)
    fps["inference"], cpu_ms["inference"] = repeat / (time.perf_counter() - started), (_cpu_s() - cpu) * 1e3 / repeat
    return fps, cpu_ms


def pipeline(model: Path, clip: Path, threads: int | None, max_frames: int | None = None) -> tuple[dict, float]:
    """`edgecnn run --headless --json` on the clip as fast as it reads: its summary and CPU seconds."""
    cmd = [EDGECNN, "run", str(model), "--source", str(clip), "--headless", "--json"]
    if threads:
        cmd += ["--threads", str(threads)]
    if max_frames:
        cmd += ["--max-frames", str(max_frames)]
    cpu = _cpu_s(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1]), _cpu_s(resource.RUSAGE_CHILDREN) - cpu


def bench_overhead(args) -> None:
    from edgecnn.runtime.classifier import TFLiteClassifier

    model, clip = ensure_model(args.dir), ensure_clip(args.dir, frames=900)
    classifier = TFLiteClassifier(model, threads=args.threads)
    cpus = os.cpu_count()
    rows = []
    for run in range(args.runs + 1):  # run 0 is the warm-up
        alone, stage_cpu_ms = stage_alone(classifier, clip, repeat=300)
        summary, cpu_s = pipeline(model, clip, args.threads)
        _, startup_cpu_s = pipeline(model, clip, args.threads, max_frames=1)  # imports + model load + first frame
        slowest = min(alone, key=alone.get)
        work_ms = sum(stage_cpu_ms.values())
        loop_cpu_ms = (cpu_s - startup_cpu_s) * 1e3 / max(summary["frames"] - 1, 1)
        # With fewer idle cores than busy stages, throughput is also capped by the CPU work per frame.
        cpu_bound_fps = min(alone[slowest], cpus * 1e3 / work_ms)
        row = {**{f"{k}_fps": v for k, v in alone.items()}, "slowest": slowest, "pipeline_fps": summary["fps"],
               "ratio": summary["fps"] / alone[slowest], "stage_cpu_ms_sum": work_ms,
               "pipeline_cpu_ms_per_frame": loop_cpu_ms, "loop_cpu_overhead": loop_cpu_ms / work_ms - 1,
               "cpu_bound_fps": cpu_bound_fps, "ratio_to_cpu_bound": summary["fps"] / cpu_bound_fps}
        if run:
            rows.append(row)
        print(json.dumps({"run": run, **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}}),
              file=sys.stderr)
    result = {key: round(_median([r[key] for r in rows]), 3) for key in rows[0] if key != "slowest"}
    result["slowest"] = statistics.mode(r["slowest"] for r in rows)
    result.update(runs=args.runs, threads=classifier.loaded.threads, cpus=cpus, clip=clip.name,
                  model=model.name, load_average=os.getloadavg()[0])
    print(json.dumps({"benchmark": "loop-overhead", **result}))


# --- capture-to-result latency --------------------------------------------------------------

class _Discard:
    def write(self, result):
        return True

    def close(self, summary):
        pass


def bench_latency(args) -> None:
    import numpy as np

    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.runtime.live.loop import LoopOptions, run_loop
    from edgecnn.runtime.live.sources import SyntheticSource

    model = ensure_model(args.dir)
    classifier = TFLiteClassifier(model, threads=args.threads)
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rows = []
    for run in range(args.runs + 1):
        # Preprocess + inference alone, on a 640x480 frame, right before the loop runs.
        times = []
        for _ in range(200):
            started = time.perf_counter()
            classifier.infer(classifier.preprocess_frame(frame))
            times.append((time.perf_counter() - started) * 1e3)
        work_ms = _median(times)
        # A camera far faster than the model: 1000 FPS of 640x480 frames, newest-frame policy.
        source = SyntheticSource(size=(480, 640), fps=1000)
        summary = run_loop(classifier, source, [_Discard()], LoopOptions(duration=args.seconds),
                           warn=lambda message: None)
        row = {"preprocess_plus_inference_ms": work_ms, "latency_p50_ms": summary["latency_ms"]["p50"],
               "latency_p90_ms": summary["latency_ms"]["p90"], "ratio_p50": summary["latency_ms"]["p50"] / work_ms,
               "ratio_p90": summary["latency_ms"]["p90"] / work_ms, "fps": summary["fps"],
               "dropped": summary["dropped"]}
        if run:
            rows.append(row)
        print(json.dumps({"run": run, **{k: round(v, 3) for k, v in row.items()}}), file=sys.stderr)
    result = {key: round(_median([r[key] for r in rows]), 3) for key in rows[0]}
    print(json.dumps({"benchmark": "capture-to-result-latency", **result, "runs": args.runs,
                      "threads": classifier.loaded.threads, "cpus": os.cpu_count()}))


# --- soak -----------------------------------------------------------------------------------

def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def bench_soak(args) -> None:
    model = ensure_model(args.dir)
    clip = ensure_clip(args.dir, size=(320, 240), frames=100)  # short: it loops (and reopens) 200 times
    cmd = [EDGECNN, "run", str(model), "--source", str(clip), "--loop", "--headless", "--json",
           "--max-frames", str(args.frames)]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    warm_at = max(1, args.frames // 10)
    samples, count, summary = [], 0, None
    for line in process.stdout:
        if line.startswith('{"type": "summary"'):
            summary = json.loads(line)
            continue
        count += 1
        if count >= warm_at and count % 500 == 0:
            samples.append((count, _rss_kb(process.pid), _fds(process.pid)))
    process.wait()
    first, last = samples[0], samples[-1]
    print(json.dumps({
        "benchmark": "soak", "frames": summary["frames"], "loops": summary["loops"], "fps": summary["fps"],
        "rss_mb_after_warmup": round(first[1] / 1024, 2), "rss_mb_at_end": round(last[1] / 1024, 2),
        "rss_growth_mb": round((last[1] - first[1]) / 1024, 2),
        "rss_max_mb": round(max(s[1] for s in samples) / 1024, 2),
        "fds": sorted({s[2] for s in samples}), "samples": len(samples), "warmup_frames": warm_at,
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["overhead", "latency", "soak"])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: edgecnn's)")
    parser.add_argument("--seconds", type=float, default=3.0, help="latency: seconds per run")
    parser.add_argument("--frames", type=int, default=20000, help="soak: frames to process")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    {"overhead": bench_overhead, "latency": bench_latency, "soak": bench_soak}[args.which](args)


if __name__ == "__main__":
    main()
