"""Run every shipped recipe through the pipeline on built-in data and tabulate the results.

    .venv/bin/python tools/measure_recipes.py --data digits --epochs 10 --out runs/recipes

For each recipe: float test accuracy, the deployed (last exported) int8/float model's accuracy,
top-1 agreement with the float model, file and gzip size, and p50 latency at the recipe's
threads, read from the run's benchmark.json. Prints a Markdown table for models/README.md.
Recipes are shortened with --epochs so that all of them fit in an hour on 2 CPU cores; the
table says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgecnn.recipe import builtin_recipe_names  # noqa: E402


def measure(name: str, data: str, epochs: int | None, out: Path) -> dict:
    command = [sys.executable, "-m", "edgecnn", "pipeline", name, "--data", data, "--out", str(out / name)]
    if epochs:
        command += ["--epochs", str(epochs)]
    if (out / name / "recipe.yaml").exists():
        command.append("--resume")
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        return {"recipe": name, "error": (proc.stderr.strip().splitlines() or ["?"])[-1], "seconds": elapsed}
    rows = json.loads((out / name / "benchmark.json").read_text())["rows"]
    return {"recipe": name, "seconds": elapsed, "rows": {row["format"]: row for row in rows}}


def markdown(results: list[dict], data: str, epochs: int | None) -> str:
    lines = [f"Measured with `tools/measure_recipes.py --data {data}"
             + (f" --epochs {epochs}`" if epochs else "`") + " on this project's 2-core x86-64 machine (XNNPACK).",
             "",
             "| recipe | float acc | int8 acc | int8-qat acc | int8 size (bytes) | int8 gzip | fp32 size | "
             "fp32 p50 ms | int8 p50 ms | pipeline time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for result in results:
        if "error" in result:
            lines.append(f"| {result['recipe']} | failed: {result['error']} |||||||||")
            continue
        rows = result["rows"]
        def get(fmt, key, spec="{:.4g}"):
            value = rows.get(fmt, {}).get(key)
            return "–" if value is None else spec.format(value)
        lines.append(
            f"| {result['recipe']} | {get('keras', 'accuracy', '{:.2%}')} | {get('float-int8', 'accuracy', '{:.2%}')} | "
            f"{get('qat-int8', 'accuracy', '{:.2%}')} | {get('qat-int8', 'size_bytes', '{:,}')} | "
            f"{get('qat-int8', 'gzip_bytes', '{:,}')} | {get('float-fp32', 'size_bytes', '{:,}')} | "
            f"{get('float-fp32', 'latency_ms_p50')} | {get('qat-int8', 'latency_ms_p50')} | {result['seconds'] / 60:.1f} min |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits")
    parser.add_argument("--epochs", type=int, default=None, help="override every recipe's train.epochs")
    parser.add_argument("--out", type=Path, default=Path("runs/recipes"))
    parser.add_argument("recipes", nargs="*", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.recipes or builtin_recipe_names():
        print(f"{name} ...", file=sys.stderr, flush=True)
        results.append(measure(name, args.data, args.epochs, args.out))
        print(f"{name}: {results[-1].get('error', 'ok')} in {results[-1]['seconds']:.0f}s", file=sys.stderr, flush=True)
    print(markdown(results, args.data, args.epochs))


if __name__ == "__main__":
    main()
