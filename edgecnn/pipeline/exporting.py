"""The pipeline's export and benchmark steps: thin calls into the training half's own modules.

Export goes through ``training.export.export`` with the same parity post-check that
``edgecnn export`` uses, gated by the recipe's ``parity`` section: a failing gate raises
``GateFailed`` and leaves no file, so the pipeline stops there with exit code 3 and a resumed
pipeline tries that export again. Which target and io each of the recipe's modes gets is the
``ExportPlan``'s decision (``ExportPlan.for_recipe``), the same object ``edgecnn export`` plans with.
After the benchmark, ``recommend_deploy`` names the file to deploy from the measured table.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgecnn.deploy import decision_lines, recommend, rule_from_recipe, write_decision
from edgecnn.export_plan import ExportPlan
from edgecnn.recipe import Recipe
from edgecnn.rundir import RunDir
from edgecnn.training.evaluate.benchmark import BenchmarkSettings, benchmark_run, parse_formats, write_artifacts
from edgecnn.training.export.exporter import ExportOptions, export, planned_path
from edgecnn.training.export.parity_gate import parity_post_check


def export_options(recipe: Recipe, mode: str) -> ExportOptions:
    """The options of one of the recipe's export modes, as the pipeline exports it from the run."""
    plan = ExportPlan.for_recipe(recipe.export, mode)
    return ExportOptions(quantize=plan.mode, io=plan.io if plan.mode == "int8" else None, target=plan.target)


def export_file(run: RunDir, mode: str, recipe: Recipe) -> Path:
    """The file that export of ``mode`` writes (model_pruned_qat_int8.tflite ...): the stage's artifact."""
    return planned_path(run.path, export_options(recipe, mode))


def export_with_parity(run: RunDir, mode: str, recipe: Recipe, *, log):
    plan = ExportPlan.for_recipe(recipe.export, mode)
    gates = recipe.parity
    options = export_options(recipe, mode)
    check = parity_post_check(max_disagreement=gates.max_disagreement if plan.quantized else None,
                              max_accuracy_drop=gates.max_accuracy_drop if plan.quantized else None,
                              threads=recipe.benchmark.threads, echo=log)
    result = export(run.path, options, post_check=check)
    log(f"wrote {result.path} ({result.size_bytes:,} bytes, gzip {result.gzip_bytes:,}; {result.quantization_source})")
    return result


def benchmark(run: RunDir, recipe: Recipe, *, log) -> dict:
    """Every format on the CPU, and on the deploy target too, so that the recommendation is measured there."""
    section = recipe.benchmark
    formats = parse_formats(",".join(section.formats) if section.formats else None)
    target = rule_from_recipe(recipe).target
    delegates = ("cpu",) if target == "cpu" else ("cpu", target)
    settings = BenchmarkSettings(threads=section.threads, delegates=delegates)
    result = benchmark_run(run.path, formats, settings, progress=log)
    write_artifacts(run.path, result)
    return result


def recommend_deploy(run: RunDir, recipe: Recipe, *, log) -> dict:
    """The recipe's deploy rule over the run's benchmark.json, written to deploy.json (see edgecnn/deploy.py)."""
    result = json.loads(run.benchmark_json.read_text(encoding="utf-8"))
    decision = recommend(result, rule_from_recipe(recipe))
    path = write_decision(run.path, decision)
    for line in decision_lines(decision):
        log(line)
    log(f"wrote {path}")
    return decision
