"""The pipeline's stages: each a function from the run directory's artifacts to a new artifact.

A stage is done when its artifact is present and valid; ``run_pipeline`` skips it then, so a
pipeline interrupted at any point (Ctrl-C, a killed process, a failed gate) continues where it
stopped. Every artifact is written atomically by the stage itself, so "present" never means
"half-written".
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path
from typing import Callable

from edgecnn.errors import DegenerateModel, EdgecnnError
from edgecnn.pipeline.explaining import explain_folder, explain_stage
from edgecnn.pipeline.exporting import benchmark, export_file, export_with_parity
from edgecnn.recipe import Recipe
from edgecnn.rundir import RunDir
from edgecnn.tflite.flatbuffer import check_tflite_bytes
from edgecnn.training.evaluate.evaluation import evaluate_run
from edgecnn.training.fit.train import train_run
from edgecnn.training.optimize.prune import prune_run
from edgecnn.training.optimize.qat import qat_run


@dataclasses.dataclass
class Context:
    """What every stage may read: the run, the resolved recipe, the data and where to log."""

    run: RunDir
    recipe: Recipe
    data: str
    log: Callable[[str], None]
    force: bool = False  # go on past a degenerate float model


@dataclasses.dataclass
class Stage:
    name: str
    # The file whose valid presence means the stage is done.
    artifact: Callable[[Context], Path]
    execute: Callable[[Context], object]
    # Whether the recipe asks for this stage at all (pruning with sparsity null does not).
    wanted: Callable[[Recipe], bool] = lambda recipe: True
    # Checked once the artifact is there, whether made now or found from an earlier run: a gate
    # that stops the pipeline (it raises) before any later stage.
    gate: Callable[[Context], None] = lambda ctx: None


# --- validity checks: cheap, and never trusting a file just because it exists -------------------

def artifact_is_valid(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    if path.suffix == ".json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return False
    elif path.suffix == ".tflite":
        try:
            check_tflite_bytes(path.read_bytes(), path.name)
        except EdgecnnError:
            return False
    elif path.suffix == ".keras":
        return zipfile.is_zipfile(path)
    return True


# --- the stages ------------------------------------------------------------------------------------

def _train(ctx: Context):
    # Checkpoints without a finished float model: an interrupted training, continued from its last epoch.
    resume = ctx.run.checkpoints.is_dir() and any(ctx.run.checkpoints.iterdir())
    return train_run(ctx.data, ctx.run.path, recipe=ctx.recipe, resume=resume, overwrite=not resume)


def _evaluate(ctx: Context):
    return evaluate_run(ctx.run.path)


def _not_degenerate(ctx: Context) -> None:
    """Stop before pruning, QAT and export when the float model is degenerate (evaluation.json says so)."""
    verdict = json.loads(ctx.run.evaluation.read_text(encoding="utf-8")).get("degenerate") or {}
    if verdict.get("status") == "undecided":
        ctx.log(f"note: {verdict['num_samples']} test images are too few to tell whether the float model beats "
                "chance; going on undecided")
    if not verdict.get("degenerate"):
        return
    what = (f"it predicts {verdict['dominant_label']!r} for {verdict['dominant_share']:.0%} of the test images"
            if verdict["status"] == "one_class" else
            f"its test accuracy {verdict['accuracy']:.1%} is no better than chance ({verdict['chance_accuracy']:.1%})")
    if ctx.force:
        ctx.log(f"warning: the float model is degenerate ({what}); going on because of --force")
        return
    raise DegenerateModel(f"the float model is degenerate: {what}; the pipeline stops before export. Train longer "
                          "or with --weights imagenet (edgecnn train --help), check the class folders, or pass "
                          "--force to export it anyway")


def _prune(ctx: Context):
    section = ctx.recipe.prune
    return prune_run(ctx.run.path, sparsity=section.sparsity, epochs=section.epochs)


def _qat(ctx: Context):
    section = ctx.recipe.qat
    preserve = bool(section.preserve_sparsity and ctx.recipe.prune.sparsity is not None)
    return qat_run(ctx.run.path, epochs=section.epochs, preserve_sparsity=preserve)


def _export_stage(mode: str) -> Stage:
    def execute(ctx: Context):
        return export_with_parity(ctx.run, mode, ctx.recipe, log=ctx.log)

    def artifact(ctx: Context) -> Path:
        return export_file(ctx.run, mode, ctx.recipe)

    return Stage(name=f"export {mode}", artifact=artifact, execute=execute)


def _benchmark(ctx: Context):
    return benchmark(ctx.run, ctx.recipe, log=ctx.log)


def stages_for(recipe: Recipe) -> list[Stage]:
    """The stages a recipe asks for, in order."""
    stages = [
        Stage("train", lambda ctx: ctx.run.float_model, _train),
        Stage("evaluate", lambda ctx: ctx.run.evaluation, _evaluate, gate=_not_degenerate),
        Stage("prune", lambda ctx: ctx.run.pruned_model, _prune, lambda r: r.prune.sparsity is not None),
        Stage("qat", lambda ctx: ctx.run.qat_model, _qat, lambda r: r.qat.enabled),
    ]
    stages += [_export_stage(mode) for mode in recipe.export.modes]
    stages.append(Stage("benchmark", lambda ctx: ctx.run.benchmark_json, _benchmark))
    stages.append(Stage("explain", lambda ctx: explain_folder(ctx.run) / "explain.json",
                        lambda ctx: explain_stage(ctx.run, ctx.recipe, log=ctx.log)))
    return [stage for stage in stages if stage.wanted(recipe)]
