"""The pipeline's export and benchmark steps: thin calls into the training half's own modules.

Export goes through ``training.export.export`` with the same parity post-check that
``edgecnn export`` uses, gated by the recipe's ``parity`` section: a failing gate raises
``GateFailed`` and leaves no file, so the pipeline stops there with exit code 3 and a resumed
pipeline tries that export again. Which target and io each of the recipe's modes gets is the
``ExportPlan``'s decision (``ExportPlan.for_recipe``), the same object ``edgecnn export`` plans with.
"""

from __future__ import annotations

from edgecnn.export_plan import ExportPlan
from edgecnn.recipe import Recipe
from edgecnn.rundir import RunDir
from edgecnn.training.evaluate.benchmark import BenchmarkSettings, benchmark_run, parse_formats, write_artifacts
from edgecnn.training.export.exporter import ExportOptions, export
from edgecnn.training.export.parity_gate import parity_post_check


def export_with_parity(run: RunDir, mode: str, recipe: Recipe, *, log):
    plan = ExportPlan.for_recipe(recipe.export, mode)
    gates = recipe.parity
    options = ExportOptions(quantize=plan.mode, io=plan.io if plan.mode == "int8" else None, target=plan.target)
    check = parity_post_check(max_disagreement=gates.max_disagreement if plan.quantized else None,
                              max_accuracy_drop=gates.max_accuracy_drop if plan.quantized else None,
                              threads=recipe.benchmark.threads, echo=log)
    result = export(run.path, options, post_check=check)
    log(f"wrote {result.path} ({result.size_bytes:,} bytes, gzip {result.gzip_bytes:,}; {result.quantization_source})")
    return result


def benchmark(run: RunDir, recipe: Recipe, *, log) -> dict:
    section = recipe.benchmark
    formats = parse_formats(",".join(section.formats) if section.formats else None)
    result = benchmark_run(run.path, formats, BenchmarkSettings(threads=section.threads), progress=log)
    write_artifacts(run.path, result)
    return result
