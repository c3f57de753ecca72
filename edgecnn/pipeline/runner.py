"""Run a recipe's stages in order, skipping those whose artifacts are already there.

After the stages, the recipe's deploy rule names the file to deploy from the measured benchmark
table (deploy.json); when every measured file fails its gates the pipeline ends with exit code 3,
after writing deploy.json and report.html.

``--resume`` continues a run made with the same recipe; a run made with a different one is
refused with the keys that differ, because mixing stages of two recipes would produce a model
that neither describes.
"""

from __future__ import annotations

import sys
import time

from edgecnn.errors import GateFailed, RunDirError
from edgecnn.pipeline.exporting import recommend_deploy
from edgecnn.pipeline.report import build_report
from edgecnn.pipeline.stages import Context, artifact_is_valid, stages_for
from edgecnn.recipe import Recipe, load_recipe
from edgecnn.rundir import RunDir

# Sections that only check or measure what the stages made: changing them does not make the run's
# artifacts stale, so a run may be resumed with new gates (after a gate failure, say), threads or deploy rule.
CHECK_ONLY_SECTIONS = ("parity", "benchmark", "deploy")


def recipe_differences(saved: Recipe, wanted: Recipe) -> list[str]:
    """Keys that shape artifacts which the wanted recipe sets (not None) differently from the run's."""
    have, want = saved.flat(), wanted.flat()
    return [f"{key} (run: {have[key]!r}, recipe: {want[key]!r})" for key in want
            if key.partition(".")[0] not in CHECK_ONLY_SECTIONS and want[key] is not None and want[key] != have[key]]


def check_run_dir(run: RunDir, recipe: Recipe, data: str, *, resume: bool, overwrite: bool) -> None:
    """Refuse to mix runs: an existing run needs --resume with the same recipe and data, or --overwrite."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other; pick one")
    if not run.exists():
        if resume and run.path.exists() and any(run.path.iterdir()):
            raise RunDirError(f"{run.path} holds no edgecnn run to resume (no recipe.yaml); choose an empty --out")
        return
    if overwrite:
        return
    if not resume:
        raise RunDirError(f"{run.path} already holds a run; pass --resume to continue it or --overwrite to start again")
    saved = run.load_recipe()
    diffs = recipe_differences(saved, recipe)
    saved_data = saved.run.get("data")
    if saved_data is not None and str(saved_data) != str(data):
        diffs.append(f"data (run: {saved_data!r}, now: {str(data)!r})")
    if diffs:
        raise RunDirError(f"cannot resume {run.path}: it was made with a different recipe: {'; '.join(diffs)}; "
                          "use the original recipe, or --overwrite to start again")


def run_pipeline(recipe_or_path, data: str, out, *, resume: bool = False, overwrite: bool = False,
                 force: bool = False, log=None) -> RunDir:
    """Run every stage the recipe asks for; returns the run directory.

    ``force``: go on past a degenerate float model instead of stopping before export.
    """
    log = log or _stderr
    recipe = recipe_or_path if isinstance(recipe_or_path, Recipe) else load_recipe(recipe_or_path)
    run = RunDir(out)
    check_run_dir(run, recipe, data, resume=resume, overwrite=overwrite)
    if overwrite and run.exists():
        run.clear()
    ctx = Context(run=run, recipe=recipe, data=str(data), log=log, force=force)
    stages = stages_for(recipe)
    for number, stage in enumerate(stages, 1):
        artifact = stage.artifact(ctx)
        prefix = f"[{number}/{len(stages)}] {stage.name}"
        if artifact_is_valid(artifact):
            log(f"{prefix}: done already ({artifact.name} present), skipped")
        else:
            log(f"{prefix} ...")
            started = time.perf_counter()
            stage.execute(ctx)
            log(f"{prefix}: done in {time.perf_counter() - started:.1f}s -> {artifact.name}")
        stage.gate(ctx)
    decision = recommend_deploy(run, recipe, log=log)
    report = build_report(run.path)
    log(f"report: {report}")
    if decision["status"] == "none_passed":
        # Measured, and nothing fit to deploy: a failed gate (exit 3), after the table, deploy.json and the report.
        raise GateFailed(decision["reason"])
    return run


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
