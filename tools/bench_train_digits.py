"""Accuracy and wall time of `edgecnn train digits --size 32 --epochs 12` (the default architecture).

Runs the real command line in a fresh process (so the figure includes Python and TensorFlow start-up,
decoding and every artifact write), then `edgecnn evaluate --json` for the held-out test accuracy.
Repeats with different seeds (split, initialisation, augmentation) and reports each run and the
median. Target: >= 97% test accuracy in well under a minute on 2 CPU cores.

    .venv/bin/python tools/bench_train_digits.py --repeats 3
    .venv/bin/python tools/bench_train_digits.py --size 32 --epochs 12 --model mobilenet_v2_tiny --json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--model", default=None, help="architecture (default: edgecnn's default)")
    parser.add_argument("--repeats", type=int, default=3, help="runs, with seeds 0, 1, ...")
    parser.add_argument("--extra", default="", help="more `edgecnn train` options, e.g. '--no-augment'")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def edgecnn(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from edgecnn.cli import main; main()", *args]
    return subprocess.run(command, capture_output=True, text=True)


def one_run(args, seed: int, folder: Path) -> dict:
    out = folder / f"seed{seed}"
    options = ["--size", str(args.size), "--epochs", str(args.epochs), "--seed", str(seed), "--out", str(out)]
    if args.model:
        options += ["--model", args.model]
    options += args.extra.split()
    started, cpu_before = time.perf_counter(), _children_cpu()
    done = edgecnn("train", "digits", *options)
    wall, cpu = time.perf_counter() - started, _children_cpu() - cpu_before
    if done.returncode != 0:
        raise SystemExit(f"edgecnn train failed:\n{done.stderr[-3000:]}")
    evaluation = edgecnn("evaluate", str(out), "--json")
    if evaluation.returncode != 0:
        raise SystemExit(f"edgecnn evaluate failed:\n{evaluation.stderr[-3000:]}")
    history = json.loads((out / "history.json").read_text())
    result = {"seed": seed, "test_accuracy": json.loads(evaluation.stdout)["accuracy"], "wall_seconds": round(wall, 1),
              "cpu_seconds": round(cpu, 1), "load_average_1min": round(os.getloadavg()[0], 2),
              "fit_seconds": history["train_seconds_this_session"], "epochs_run": len(history["epochs"]),
              "best_epoch": history["best_epoch"]}
    print(f"seed {seed}: test accuracy {result['test_accuracy']:.4f}, {result['wall_seconds']:.1f}s wall "
          f"({result['fit_seconds']:.1f}s in fit, {result['cpu_seconds']:.1f} CPU-s, load "
          f"{result['load_average_1min']})", file=sys.stderr, flush=True)
    return result


def _children_cpu() -> float:
    """User + system CPU seconds of finished child processes (the command's work, whatever the machine's load)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> dict:
    args = parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="edgecnn-bench-digits-"))
    try:
        edgecnn("models", "--size", "8")  # warm-up: the first start of TensorFlow reads its files from disk
        runs = [one_run(args, seed, folder) for seed in range(args.repeats)]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    summary = {
        "command": f"edgecnn train digits --size {args.size} --epochs {args.epochs}"
                   + (f" --model {args.model}" if args.model else "") + (f" {args.extra}" if args.extra else ""),
        "runs": runs,
        "median_test_accuracy": statistics.median(r["test_accuracy"] for r in runs),
        "min_test_accuracy": min(r["test_accuracy"] for r in runs),
        "median_wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
        "median_fit_seconds": statistics.median(r["fit_seconds"] for r in runs),
        "median_cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "cpu_count": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['command']}: median test accuracy {summary['median_test_accuracy']:.4f} "
              f"(min {summary['min_test_accuracy']:.4f}), median wall {summary['median_wall_seconds']:.1f}s "
              f"(fit {summary['median_fit_seconds']:.1f}s, {summary['median_cpu_seconds']:.1f} CPU-s on "
              f"{summary['cpu_count']} cores) over {len(runs)} runs")
    return summary


if __name__ == "__main__":
    main()
