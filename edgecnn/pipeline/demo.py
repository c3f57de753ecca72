"""``edgecnn demo``: the whole toolkit on data that ships with it, then the live loop on a clip.

1. the demo recipe (``digits_demo``) through the pipeline: train, evaluate, prune, QAT,
   export every mode with parity, benchmark, report;
2. a labelled MJPG clip of held-out test images;
3. ``edgecnn run --headless --json`` on that clip with the file deploy.json recommends in a separate process (the device half, no
   TensorFlow), and its per-frame labels scored against the truth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edgecnn.atomic import atomic_path, write_json
from edgecnn.deploy import DEPLOY_FILE
from edgecnn.errors import EdgecnnError
from edgecnn.pipeline.exporting import export_file
from edgecnn.pipeline.clip import live_loop_accuracy, write_labelled_clip
from edgecnn.pipeline.runner import run_pipeline
from edgecnn.rundir import RunDir

DEMO_RECIPE = "digits_demo"
CLIP_IMAGES = 120


def run_demo(out, *, data: str = "digits", recipe=DEMO_RECIPE, overwrite: bool = False, log=None) -> dict:
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run_path = out / "run"
    # Running the demo again continues (or just re-reports) the same run unless told to start over.
    resume = RunDir(run_path).exists() and not overwrite
    if resume:
        log(f"demo: continuing the run in {run_path} (pass --overwrite to start again)")
    run = run_pipeline(recipe, data, run_path, resume=resume, overwrite=overwrite, log=log)

    model = _live_model(run)
    clip = write_labelled_clip(run.split_items("test"), run.labels(), out / "heldout_clip.avi", limit=CLIP_IMAGES)
    log(f"demo: wrote {clip} ({CLIP_IMAGES} held-out images); running the live loop on it")
    results = out / "live_results.jsonl"
    _run_live_loop(model, clip, results)
    live = live_loop_accuracy(results, clip)
    summary = {
        "run": str(run.path), "model": str(model), "clip": str(clip), "live_results": str(results),
        "report": str(run.report_html), "live_accuracy": live["accuracy"], "live_frames": live["frames"],
        "live_fps": live["fps"],
    }
    write_json(out / "demo_summary.json", summary)
    return summary


def _live_model(run: RunDir) -> Path:
    """The file deploy.json recommends; without a recommendation, the recipe's int8 export (or the next mode)."""
    chosen = (json.loads((run.path / DEPLOY_FILE).read_text(encoding="utf-8")) if (run.path / DEPLOY_FILE).is_file()
              else {}).get("recommended")
    if chosen and (run.path / chosen["file"]).is_file():
        return run.path / chosen["file"]
    recipe = run.load_recipe()
    for mode in ("int8", "dynamic", "fp16", "fp32"):
        if mode in recipe.export.modes and export_file(run, mode, recipe).is_file():
            return export_file(run, mode, recipe)
    raise EdgecnnError(f"{run.path} has no exported .tflite model to run; check the recipe's export.modes")


def _run_live_loop(model: Path, clip: Path, results: Path) -> None:
    """``edgecnn run`` in its own process, exactly as a user on the device would call it."""
    command = [sys.executable, "-m", "edgecnn", "run", str(model), "--source", str(clip), "--headless", "--json"]
    with atomic_path(results) as tmp, open(tmp, "w", encoding="utf-8") as sink:
        proc = subprocess.run(command, stdout=sink, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise EdgecnnError(f"the live loop failed on the demo clip: {last}")
