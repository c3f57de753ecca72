"""Benchmarks of the camera loop (issue 5's performance targets). Not a test: prints figures.

    python tools/bench_loop.py overhead [--runs 5]   # pipeline FPS vs the slowest stage alone, same run
    python tools/bench_loop.py latency  [--runs 5]   # capture-to-result vs preprocess + inference, fast camera
    python tools/bench_loop.py soak [--frames 20000] # RSS growth and open fds over a looping video
    python tools/bench_loop.py compare [--rounds 7] [--workloads 1,2,3,4]   # issue 16: vs the naive loop
    python tools/bench_loop.py where [--rounds 5]     # workload 1's thread CPU per frame, by component

``compare`` runs, in one process with rounds interleaved (the order rotates every round), edgecnn's
loop (auto mode, and forced inline and pipeline), the naive ten-line loop a user would write
(cap.read, resize, cvtColor, quantize in numpy, set_tensor, invoke, argmax) and each stage alone,
on the same interpreter. Round 0 is a warm-up; figures are medians over the other rounds.

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
           "--max-frames", str(args.frames), "--mode", args.mode]
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
        "mode": summary.get("mode"),
    }))


# --- edgecnn's loop vs the naive loop (issue 16) ----------------------------------------------

WORKLOADS = {  # name: (model size, family, alpha, clip size, fourcc, live)
    1: ("32x32 MobileNetV1 0.25 int8, 240x240 MJPG", 32, "mobilenet_v1", 0.25, (240, 240), "MJPG", False),
    2: ("96x96 MobileNetV1 0.25 int8, 640x480 MJPG", 96, "mobilenet_v1", 0.25, (640, 480), "MJPG", False),
    3: ("128x128 MobileNetV2 0.35 int8, 1280x720 mp4v", 128, "mobilenet_v2", 0.35, (1280, 720), "mp4v", False),
    4: ("96x96 MobileNetV1 0.25 int8, synthetic 640x480 camera at 1000 FPS", 96, "mobilenet_v1", 0.25,
        (640, 480), None, True),
}
LIVE_SECONDS = 2.0


def _frames(clip, live):
    """(read function, release function) of a fresh reader: the clip, or a 1000 FPS synthetic camera."""
    import cv2

    from edgecnn.runtime.live.sources import SyntheticSource

    if live:
        source = SyntheticSource(size=(480, 640), fps=1000)
        source.open()
        return source.read, source.release
    capture = cv2.VideoCapture(str(clip))
    return (lambda: (lambda ok_frame: ok_frame[1] if ok_frame[0] else None)(capture.read())), capture.release


def naive_loop(interpreter, clip, live) -> dict:
    """The ten lines a user would write, timed from the first result to the last."""
    import cv2
    import numpy as np

    read, release = _frames(clip, live)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero_point = inp["quantization"]
    h, w = int(inp["shape"][1]), int(inp["shape"][2])
    done, latencies, cpu = [], [], _cpu_s()
    deadline = time.perf_counter() + LIVE_SECONDS
    while (frame := read()) is not None and (not live or time.perf_counter() < deadline):
        got = time.perf_counter()
        x = cv2.cvtColor(cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        x = np.clip(np.round((x.astype(np.float32) - 127.5) / 127.5 / scale + zero_point), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], x[None])
        interpreter.invoke()
        int(np.argmax(interpreter.get_tensor(out["index"])))
        done.append(time.perf_counter())
        latencies.append((done[-1] - got) * 1e3)
    cpu = _cpu_s() - cpu
    release()
    fps = (len(done) - 1) / (done[-1] - done[0])
    return {"fps": fps, "p50": _pct(latencies, 50), "p90": _pct(latencies, 90), "cpu_ms": cpu * 1e3 / len(done),
            "frames": len(done), "mode": "-"}


def _pct(values, q):
    import numpy as np

    return float(np.percentile(values, q))


def edgecnn_loop(classifier, clip, live, mode) -> dict:
    from edgecnn.runtime.live.loop import LoopOptions, run_loop
    from edgecnn.runtime.live.sources import OpenCVSource, SyntheticSource

    source = SyntheticSource(size=(480, 640), fps=1000) if live else OpenCVSource(str(clip), "file")
    options = LoopOptions(mode=mode, duration=LIVE_SECONDS if live else None)
    cpu = _cpu_s()
    summary = run_loop(classifier, source, [_Discard()], options, warn=lambda message: None)
    cpu = _cpu_s() - cpu
    return {"fps": summary["fps"], "p50": summary["latency_ms"]["p50"], "p90": summary["latency_ms"]["p90"],
            "cpu_ms": cpu * 1e3 / summary["frames"], "frames": summary["frames"], "mode": summary["mode"],
            "reason": summary["mode_reason"], "switches": summary.get("mode_switches", 0),
            "handoff_ms": summary.get("handoff_ms")}


def stages_alone(classifier, clip, live) -> dict:
    """FPS of decode (or the synthetic camera), edgecnn's preprocess, and invoke, each alone."""
    from edgecnn.runtime.live.frame_input import FrameInput

    read, release = _frames(clip, live)
    # Keep only a few decoded frames: keeping all 300 (830 MB of 1280x720 frames) timed page faults, not the decoder.
    kept, decoded, started = [], 0, time.perf_counter()
    while decoded < 300 and (frame := read()) is not None:
        decoded += 1
        if len(kept) < 30:
            kept.append(frame)
    release()
    fps = {"capture": (decoded - 1) / (time.perf_counter() - started)}
    frame_input = FrameInput(classifier)
    started = time.perf_counter()
    for i in range(decoded):
        frame_input.write(kept[i % len(kept)])
    fps["preprocess"] = decoded / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(decoded):
        classifier.interpreter.invoke()
    fps["inference"] = decoded / (time.perf_counter() - started)
    return fps


def bench_compare(args) -> None:
    from edgecnn.runtime.classifier import TFLiteClassifier

    for number in [int(w) for w in args.workloads.split(",")]:
        name, size, family, alpha, clip_size, fourcc, live = WORKLOADS[number]
        model = ensure_model(args.dir, size=size, family=family, alpha=alpha)
        clip = None if live else ensure_clip(args.dir, size=clip_size, frames=300, fourcc=fourcc)
        classifier = TFLiteClassifier(model, threads=args.threads)
        runs = {"naive": lambda: naive_loop(classifier.interpreter, clip, live),
                **{f"edgecnn {m}": (lambda m=m: edgecnn_loop(classifier, clip, live, m))
                   for m in ("auto", "inline", "pipeline")}}
        rows = []
        for round_ in range(args.rounds + 1):
            names = list(runs)
            names = names[round_ % len(names):] + names[:round_ % len(names)]  # rotate the order
            row = {n: runs[n]() for n in names}
            row["stages"] = stages_alone(classifier, clip, live)
            print(json.dumps({"workload": number, "round": round_, "load": os.getloadavg()[0],
                              **{k: {kk: (round(vv, 3) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                                 for k, v in row.items()}}), file=sys.stderr)
            if round_:
                rows.append(row)
        _report(number, name, rows, classifier, args)


def _report(number, name, rows, classifier, args) -> None:
    slowest = {r: min(row["stages"].values()) for r, row in enumerate(rows)}
    stage_fps = {s: _median([row["stages"][s] for row in rows]) for s in rows[0]["stages"]}
    print(f"\nworkload {number}: {name}; {args.rounds} rounds after a warm-up, medians; "
          f"threads {classifier.loaded.threads}, cpus {os.cpu_count()}, load {os.getloadavg()[0]:.2f}")
    print("stages alone (FPS): " + ", ".join(f"{s} {v:,.0f}" for s, v in stage_fps.items()))
    print("| loop | fps | / naive | / slowest stage | latency p50 / p90 ms | CPU ms/frame | mode |")
    print("|---|---|---|---|---|---|---|")
    for loop in ("naive", "edgecnn auto", "edgecnn inline", "edgecnn pipeline"):
        fps = _median([row[loop]["fps"] for row in rows])
        to_naive = _median([row[loop]["fps"] / row["naive"]["fps"] for row in rows])
        to_slowest = _median([row[loop]["fps"] / slowest[r] for r, row in enumerate(rows)])
        p50, p90 = (_median([row[loop][k] for row in rows]) for k in ("p50", "p90"))
        cpu = _median([row[loop]["cpu_ms"] for row in rows])
        modes = sorted({row[loop]["mode"] for row in rows})
        print(f"| {loop} | {fps:,.0f} | {to_naive:.2f} | {to_slowest:.2f} | {p50:.2f} / {p90:.2f} | {cpu:.2f} | "
              f"{'/'.join(modes)} |")
    print(f"auto mode's reason (last round): {rows[-1]['edgecnn auto']['reason']}")


def bench_where(args) -> None:
    """Thread CPU per frame of each component of workload 1, and of both whole loops: CPU time, so that it
    holds on a shared machine; the interpreter on 1 thread, so that invoke's work is in this thread's time."""
    import cv2

    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.runtime.live.frame_input import FrameInput
    from edgecnn.runtime.postprocess import predict

    model, clip = ensure_model(args.dir, size=32), ensure_clip(args.dir, size=(240, 240), frames=300)
    classifier = TFLiteClassifier(model, threads=1)
    capture, frames = cv2.VideoCapture(str(clip)), []
    while len(frames) < 60 and (got := capture.read())[0]:
        frames.append(got[1])
    capture.release()
    frame_input = FrameInput(classifier)
    frame_input.write(frames[0])
    scores = frame_input.infer().copy()

    def each(step, n=300):
        started = time.thread_time()
        for i in range(n):
            step(frames[i % len(frames)])
        return (time.thread_time() - started) / n

    def decode():
        capture, n, started = cv2.VideoCapture(str(clip)), 0, time.thread_time()
        while capture.read()[0]:
            n += 1
        spent = time.thread_time() - started
        capture.release()
        return spent / n

    def whole(run):
        started = time.thread_time()
        frames = run()["frames"]
        return (time.thread_time() - started) / frames

    parts = {
        "decode (read)": decode,
        "resize alone": lambda: each(lambda f: cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA)),
        "FrameInput.write": lambda: each(frame_input.write),
        "inference (invoke + scores)": lambda: each(lambda f: frame_input.infer()),
        "predict (top-1)": lambda: each(lambda f: predict(scores, classifier.labels, k=1)),
        "naive loop, whole frame": lambda: whole(lambda: naive_loop(classifier.interpreter, clip, False)),
        "edgecnn inline, whole frame": lambda: whole(lambda: edgecnn_loop(classifier, clip, False, "inline")),
    }
    found = {name: [] for name in parts}
    for _ in range(args.rounds):
        for name, measure in parts.items():
            found[name].append(measure() * 1e6)
    print(f"thread CPU us/frame, min of {args.rounds} rounds, load {os.getloadavg()[0]:.2f}")
    for name, values in found.items():
        print(f"  {name:30s} {min(values):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["overhead", "latency", "soak", "compare", "where"])
    parser.add_argument("--rounds", type=int, default=7, help="compare: measured rounds (after one warm-up)")
    parser.add_argument("--workloads", default="1,2,4", help="compare: which workloads (1-4, see WORKLOADS)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads (default: edgecnn's)")
    parser.add_argument("--seconds", type=float, default=3.0, help="latency: seconds per run")
    parser.add_argument("--frames", type=int, default=20000, help="soak: frames to process")
    parser.add_argument("--mode", default="auto", choices=["auto", "inline", "pipeline"], help="soak: loop mode")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    {"overhead": bench_overhead, "latency": bench_latency, "soak": bench_soak,
     "compare": bench_compare, "where": bench_where}[args.which](args)


if __name__ == "__main__":
    main()
