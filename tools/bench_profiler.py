"""How accurate is `edgecnn profile`? Three side-by-side checks on the reference model.

1. Overhead: on ONE interpreter, alternate the profiler's timed loop with a bare
   ``t0 = perf_counter(); invoke(); t1`` loop; their medians should agree within 5%.
2. Agreement with LiteRT's own tool: alternate ``edgecnn profile --json`` and
   ``python -m ai_edge_litert.tools.benchmark_litert_model --model M --num_threads N``
   (each a fresh process, same runs and warm-up); medians within 10%.
3. int8 vs float32: the profiler's p50 of both files at the same threads (target >= 1.5x).

The reference model is the default recipe's architecture at 96x96 (random weights: latency
does not depend on them), exported to float32 and int8 with TensorFlow's converter. It runs in
about 0.1 ms, where LiteRT's tool (which rounds to 0.01 ms and adds its own per-call buffer
handling) is coarse, so a larger architecture is measured as well by default.

    .venv/bin/python tools/bench_profiler.py [--architectures mobilenet_v1_tiny,mobilenet_v1]
        [--threads 1,2] [--rounds 11] [--runs 200] [--out bench.json]

Prints a Markdown table (docs/profiling.md holds one) and writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZE = 96
CLASSES = 10


# --- the reference model ---------------------------------------------------------------------

def build_reference_models(folder: Path, architecture: str) -> dict[str, Path]:
    """float32 and int8 (PTQ, int8 in/out) .tflite files of ``architecture`` at 96x96."""
    from edgecnn.training.keras_compat import tf
    from edgecnn.training.models.mobilenet import build_model

    model = build_model(architecture, num_classes=CLASSES, size=SIZE)
    rng = np.random.default_rng(0)
    calibration = [rng.uniform(-1, 1, (1, SIZE, SIZE, 3)).astype(np.float32) for _ in range(32)]

    paths = {}
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    paths["fp32"] = folder / f"{architecture}_fp32.tflite"
    paths["fp32"].write_bytes(converter.convert())

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    paths["int8"] = folder / f"{architecture}_int8.tflite"
    paths["int8"].write_bytes(converter.convert())
    return paths


# --- 1. profiler loop vs bare loop on the same interpreter -----------------------------------

def bare_loop_ms(interpreter, runs: int) -> list[float]:
    """The simplest honest measurement: a per-call perf_counter around invoke()."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def overhead_check(model: Path, threads: int, rounds: int, runs: int, warmup: int) -> dict:
    from edgecnn.runtime.interpreter import load_interpreter
    from edgecnn.runtime.profile.profiler import fix_dynamic_shapes, set_representative_inputs, time_invokes

    interpreter = load_interpreter(model, threads=threads).interpreter
    fix_dynamic_shapes(interpreter)
    set_representative_inputs(interpreter, None)
    time_invokes(interpreter.invoke, warmup)
    profiler_medians, bare_medians = [], []
    for _ in range(rounds):  # alternate, so drift (thermal, neighbours) hits both alike
        profiler_medians.append(float(np.median(time_invokes(interpreter.invoke, runs))) / 1e6)
        bare_medians.append(statistics.median(bare_loop_ms(interpreter, runs)))
    return paired("profiler", profiler_medians, "bare", bare_medians)


def paired(name_a: str, a: list[float], name_b: str, b: list[float]) -> dict:
    """Medians of both series and the median of the per-round differences.

    On a shared machine, load comes in bursts lasting seconds; two measurements taken back to
    back see the same burst, so the per-round ratio is far steadier than a ratio of medians.
    """
    diffs = [100 * (x - y) / y for x, y in zip(a, b)]
    return {f"{name_a}_p50_ms": statistics.median(a), f"{name_b}_p50_ms": statistics.median(b),
            "diff_pct": statistics.median(diffs), f"{name_a}_rounds": a, f"{name_b}_rounds": b}


# --- 2. edgecnn profile vs LiteRT's benchmark tool, each in a fresh process -----------------

def edgecnn_profile_p50(model: Path, threads: int, runs: int, warmup: int) -> float:
    done = subprocess.run([sys.executable, "-c", "from edgecnn.cli import main; main()", "profile", str(model),
                           "--threads", str(threads), "--runs", str(runs), "--warmup", str(warmup), "--json"],
                          capture_output=True, text=True, check=True, cwd=REPO)
    return float(json.loads(done.stdout)["latency_ms"]["p50"])


def litert_benchmark_p50(model: Path, threads: int, runs: int, warmup: int, scratch: Path) -> float:
    result = scratch / "litert.json"
    subprocess.run([sys.executable, "-m", "ai_edge_litert.tools.benchmark_litert_model", f"--model={model}",
                    f"--num_threads={threads}", f"--num_runs={runs}", f"--warmup_runs={warmup}",
                    f"--result_json={result}"], capture_output=True, text=True, check=True)
    return float(json.loads(result.read_text())["latency"]["median_ms"])


def litert_check(model: Path, threads: int, rounds: int, runs: int, warmup: int, scratch: Path) -> dict:
    ours, theirs = [], []
    for i in range(rounds):  # alternate which goes first
        if i % 2:
            theirs.append(litert_benchmark_p50(model, threads, runs, warmup, scratch))
            ours.append(edgecnn_profile_p50(model, threads, runs, warmup))
        else:
            ours.append(edgecnn_profile_p50(model, threads, runs, warmup))
            theirs.append(litert_benchmark_p50(model, threads, runs, warmup, scratch))
    return paired("edgecnn", ours, "litert", theirs)


# --- 3. int8 vs float32 -----------------------------------------------------------------------

def int8_speedup(models: dict[str, Path], threads: int, rounds: int, runs: int, warmup: int) -> dict:
    from edgecnn.runtime.profile.profiler import ProfileSettings, profile_model

    settings = ProfileSettings(threads=(threads,), runs=runs, warmup=warmup)
    p50 = {"fp32": [], "int8": []}
    for i in range(rounds):
        for name in (("fp32", "int8") if i % 2 == 0 else ("int8", "fp32")):
            p50[name].append(profile_model(models[name], settings)["latency_ms"]["p50"])
    ratios = [f / q for f, q in zip(p50["fp32"], p50["int8"])]
    return {"fp32_p50_ms": statistics.median(p50["fp32"]), "int8_p50_ms": statistics.median(p50["int8"]),
            "speedup": statistics.median(ratios), "rounds": p50}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--architectures", default="mobilenet_v1_tiny,mobilenet_v1",
                        help="registered architectures, comma separated (the first is the reference)")
    parser.add_argument("--threads", default="1,2", help="thread counts, comma separated")
    parser.add_argument("--rounds", type=int, default=11, help="alternating rounds per comparison")
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per round")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=None, help="write the raw figures here (JSON)")
    parser.add_argument("--models", type=Path, default=None, help="keep the reference .tflite files in this folder")
    args = parser.parse_args(argv)
    threads_list = [int(t) for t in args.threads.split(",")]

    from edgecnn.runtime.profile import sysinfo

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.models or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = {"environment": sysinfo.system_info(),
                   "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                   "sizes": {}, "rows": [], "speedup": []}
        for architecture in args.architectures.split(","):
            print(f"building {architecture} at {SIZE}x{SIZE} (fp32, int8) ...", file=sys.stderr)
            models = build_reference_models(folder, architecture)
            results["sizes"][architecture] = {k: p.stat().st_size for k, p in models.items()}
            for threads in threads_list:
                for name in ("fp32", "int8"):
                    print(f"{architecture} {name}, {threads} thread(s): overhead and LiteRT checks ...", file=sys.stderr)
                    results["rows"].append({
                        "architecture": architecture, "model": name, "threads": threads,
                        "overhead": overhead_check(models[name], threads, args.rounds, args.runs, args.warmup),
                        "litert": litert_check(models[name], threads, args.rounds, args.runs, args.warmup, Path(tmp)),
                    })
                print(f"{architecture} int8 vs fp32, {threads} thread(s) ...", file=sys.stderr)
                results["speedup"].append({"architecture": architecture, "threads": threads,
                                           **int8_speedup(models, threads, args.rounds, args.runs, args.warmup)})

    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


def markdown(results: dict) -> str:
    env, settings = results["environment"], results["settings"]
    sizes = "; ".join(f"{arch}: fp32 {s['fp32']:,} B, int8 {s['int8']:,} B" for arch, s in results["sizes"].items())
    lines = [f"Machine: {env['cpu_model']}, {env['usable_cores']} usable cores, {env['os']}, Python {env['python']}. "
             f"Models at {SIZE}x{SIZE} ({sizes}). {settings['rounds']} alternating rounds x {settings['runs']} runs "
             f"after {settings['warmup']} warm-up; p50 columns are medians of the rounds' medians, "
             "diff and speed-up are medians of the per-round (paired) figures.",
             "",
             "| architecture | model | threads | profiler p50 (ms) | bare loop p50 (ms) | diff | `edgecnn profile` p50 (ms) "
             "| LiteRT benchmark p50 (ms) | diff |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in results["rows"]:
        o, lt = row["overhead"], row["litert"]
        lines.append(f"| {row['architecture']} | {row['model']} | {row['threads']} | {o['profiler_p50_ms']:.3f} | "
                     f"{o['bare_p50_ms']:.3f} | {o['diff_pct']:+.1f}% | {lt['edgecnn_p50_ms']:.3f} | "
                     f"{lt['litert_p50_ms']:.3f} | {lt['diff_pct']:+.1f}% |")
    lines += ["", "| architecture | threads | fp32 p50 (ms) | int8 p50 (ms) | int8 speed-up |", "|---|---|---|---|---|"]
    for s in results["speedup"]:
        lines.append(f"| {s['architecture']} | {s['threads']} | {s['fp32_p50_ms']:.3f} | {s['int8_p50_ms']:.3f} | "
                     f"{s['speedup']:.2f}x |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
