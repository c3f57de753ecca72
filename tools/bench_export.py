"""Sizes, accuracy and latency of edgecnn's optimize-and-export path, against the issue's targets.

On a model trained on the built-in digits (real 8x8 handwritten digits, upscaled), this runs
the whole path and measures every figure side by side:

  1. `edgecnn train digits` (a fresh process; skipped with --run RUN)
  2. export float32 and int8 by post-training quantization (PTQ) of float.keras
  3. QAT from the float weights -> int8 export
  4. prune to 50% -> prune-preserving QAT -> int8 export
  5. test-split accuracy of every .tflite through the device half (TFLiteClassifier)
  6. float32 vs int8 latency on XNNPACK: same thread count, alternating rounds, warm-up first,
     medians of every invoke (perf_counter_ns)

Targets: int8 size <= 0.3x float32; pruned+int8 gzip <= 0.2x float32 gzip; accuracy drop vs
float: QAT <= 0.5 pp, PTQ <= 1.0 pp, pruned+PQAT <= 1.5 pp; int8 >= 1.5x faster than float32.

    .venv/bin/python tools/bench_export.py                       # mobilenet_v1 at width 1.0, 32 px
    .venv/bin/python tools/bench_export.py --model mobilenet_v1 --alpha 0.5 --size 32 --json
    .venv/bin/python tools/bench_export.py --run runs/digits      # reuse a trained run (copied first)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"int8_size_ratio": 0.3, "pruned_int8_gzip_ratio": 0.2, "qat_drop_pp": 0.5, "ptq_drop_pp": 1.0,
           "pqat_drop_pp": 1.5, "int8_speedup": 1.5}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v1")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=15, help="training epochs")
    parser.add_argument("--qat-epochs", type=int, default=3)
    parser.add_argument("--prune-epochs", type=int, default=4)
    parser.add_argument("--sparsity", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200, help="timed invokes per model per round")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5, help="alternating fp32/int8 rounds")
    parser.add_argument("--run", type=Path, default=None, help="a trained run to reuse (copied, never modified)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the work folder here")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def train(args, run: Path) -> None:
    command = [sys.executable, "-c", "from edgecnn.cli import main; main()", "train", "digits", "--out", str(run),
               "--model", args.model, "--alpha", str(args.alpha), "--size", str(args.size),
               "--epochs", str(args.epochs), "--no-flip"]
    log("training: " + " ".join(command[3:]))
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"training failed:\n{done.stderr[-2000:]}")


def tflite_accuracy(path: Path, images) -> float:
    """Top-1 accuracy of a .tflite on an ImageSet, through the device half's classifier."""
    import numpy as np
    from sklearn.metrics import accuracy_score

    from edgecnn.runtime.classifier import TFLiteClassifier

    classifier = TFLiteClassifier(path, threads=1)
    scores = classifier.predict(images.inputs())
    return float(accuracy_score(images.labels, np.argmax(scores, axis=1)))


def latencies(paths: dict[str, Path], *, threads: int, runs: int, warmup: int, rounds: int) -> dict[str, list[int]]:
    """Per-invoke nanoseconds for each model, measured in alternating rounds on warmed interpreters."""
    import numpy as np

    from edgecnn.runtime.interpreter import load_interpreter

    interpreters = {}
    for name, path in paths.items():
        interpreter = load_interpreter(path, threads=threads).interpreter
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        for _ in range(warmup):
            interpreter.invoke()
        interpreters[name] = interpreter
    samples = {name: [] for name in paths}
    for _ in range(rounds):
        for name, interpreter in interpreters.items():
            for _ in range(runs):
                start = time.perf_counter_ns()
                interpreter.invoke()
                samples[name].append(time.perf_counter_ns() - start)
    return samples


def main(argv=None) -> int:
    args = parse_args(argv)
    from edgecnn.rundir import RunDir
    from edgecnn.training.data import run_inputs
    from edgecnn.training.export.exporter import ExportOptions, export
    from edgecnn.training.optimize import finetune
    from edgecnn.training.optimize.prune import prune_run
    from edgecnn.training.optimize.qat import qat_run

    work = Path(tempfile.mkdtemp(prefix="bench_export_")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    run_path = work / "run"
    if args.run is not None:
        shutil.copytree(args.run, run_path, dirs_exist_ok=True)
    elif not (run_path / "float.keras").is_file():
        train(args, run_path)
    run = RunDir(run_path)
    recipe = run.load_recipe()
    test = finetune.load_split(run, "test", run_inputs.input_spec(recipe))
    files = {}

    def out(name):
        return work / f"{name}.tflite"

    log("export float32 and PTQ int8 of float.keras")
    files["fp32"] = export(run_path, ExportOptions(quantize="none", start="float", out=out("fp32")), progress=False)
    files["int8_ptq"] = export(run_path, ExportOptions(quantize="int8", start="float", out=out("int8_ptq")),
                               progress=False)
    log(f"QAT from float.keras, {args.qat_epochs} epochs")
    qat_report = qat_run(run_path, epochs=args.qat_epochs, start="float", progress=False)
    files["int8_qat"] = export(run_path, ExportOptions(quantize="int8", start="qat", out=out("int8_qat")),
                               progress=False)
    log(f"prune to {args.sparsity:.0%}, {args.prune_epochs} epochs; then prune-preserving QAT")
    prune_report = prune_run(run_path, sparsity=args.sparsity, epochs=args.prune_epochs, progress=False)
    pqat_report = qat_run(run_path, epochs=args.qat_epochs, preserve_sparsity=True, progress=False)
    files["int8_pruned_qat"] = export(run_path, ExportOptions(quantize="int8", start="qat", out=out("int8_pqat")),
                                      progress=False)
    files["fp32_pruned"] = export(run_path, ExportOptions(quantize="none", start="pruned", out=out("fp32_pruned")),
                                  progress=False)

    log(f"accuracy of every file on {len(test)} test images")
    from edgecnn.training.models.model_io import load_keras_model

    float_accuracy = finetune.accuracy(load_keras_model(run.float_model), test)
    rows = {}
    for name, result in files.items():
        accuracy = tflite_accuracy(result.path, test)
        rows[name] = {"file": result.path.name, "size_bytes": result.size_bytes, "gzip_bytes": result.gzip_bytes,
                      "accuracy": accuracy, "drop_pp": round(100 * (float_accuracy - accuracy), 2),
                      "source": result.quantization_source}

    log(f"latency: fp32 vs int8 (PTQ and QAT), {args.threads} threads, {args.rounds} rounds x {args.runs} invokes")
    samples = latencies({k: files[k].path for k in ("fp32", "int8_ptq", "int8_qat")}, threads=args.threads,
                        runs=args.runs, warmup=args.warmup, rounds=args.rounds)
    median_us = {k: statistics.median(v) / 1000 for k, v in samples.items()}
    for name, value in median_us.items():
        rows[name]["latency_us_p50"] = round(value, 2)

    fp32, pqat = rows["fp32"], rows["int8_pruned_qat"]
    figures = {
        "int8_size_ratio": round(rows["int8_ptq"]["size_bytes"] / fp32["size_bytes"], 3),
        "int8_qat_size_ratio": round(rows["int8_qat"]["size_bytes"] / fp32["size_bytes"], 3),
        "pruned_int8_gzip_ratio": round(pqat["gzip_bytes"] / fp32["gzip_bytes"], 3),
        "qat_drop_pp": rows["int8_qat"]["drop_pp"],
        "ptq_drop_pp": rows["int8_ptq"]["drop_pp"],
        "pqat_drop_pp": pqat["drop_pp"],
        "int8_speedup": round(median_us["fp32"] / median_us["int8_ptq"], 2),
        "int8_qat_speedup": round(median_us["fp32"] / median_us["int8_qat"], 2),
    }
    verdicts = {
        "int8_size_ratio": figures["int8_size_ratio"] <= TARGETS["int8_size_ratio"],
        "pruned_int8_gzip_ratio": figures["pruned_int8_gzip_ratio"] <= TARGETS["pruned_int8_gzip_ratio"],
        "qat_drop_pp": figures["qat_drop_pp"] <= TARGETS["qat_drop_pp"],
        "ptq_drop_pp": figures["ptq_drop_pp"] <= TARGETS["ptq_drop_pp"],
        "pqat_drop_pp": figures["pqat_drop_pp"] <= TARGETS["pqat_drop_pp"],
        "int8_speedup": figures["int8_speedup"] >= TARGETS["int8_speedup"],
    }
    report = {
        "model": recipe.to_dict()["model"], "test_images": len(test), "threads": args.threads,
        "float_keras_accuracy": float_accuracy, "rows": rows, "figures": figures, "targets": TARGETS,
        "met": verdicts, "qat_keras_accuracy": qat_report["accuracy"]["qat"],
        "pqat_keras_accuracy": pqat_report["accuracy"]["qat"],
        "pruned_sparsity": prune_report["sparsity_of_pruned_layers"],
        "pruned_sparsity_all_kernels": prune_report["sparsity_of_all_kernels"],
        "work": str(work),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    model = report["model"]
    lines = [f"{model.get('architecture')} alpha {model.get('alpha')} at {model.get('size')} px, digits, "
             f"{report['test_images']} test images; float Keras accuracy {report['float_keras_accuracy']:.2%}",
             "", f"{'file':<18} {'source':<12} {'bytes':>10} {'gzip':>10} {'acc %':>7} {'drop pp':>8} {'p50 us':>8}"]
    for row in report["rows"].values():
        latency = f"{row['latency_us_p50']:.1f}" if "latency_us_p50" in row else ""
        lines.append(f"{row['file']:<18} {row['source']:<12} {row['size_bytes']:>10,} {row['gzip_bytes']:>10,} "
                     f"{100 * row['accuracy']:>7.2f} {row['drop_pp']:>8.2f} {latency:>8}")
    lines.append("")
    for key, value in report["figures"].items():
        target = report["targets"].get(key)
        met = report["met"].get(key)
        verdict = "" if met is None else ("  meets" if met else "  MISSES") + f" target {target}"
        lines.append(f"{key:<24} {value}{verdict}")
    lines.append(f"pruned layers' sparsity {report['pruned_sparsity']:.1%} "
                 f"(all kernels {report['pruned_sparsity_all_kernels']:.1%})")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
