"""``edgecnn explain MODEL``: what the model looks at (Grad-CAM on a run, CAM/occlusion on any .tflite).

A .tflite goes to ``edgecnn.runtime.explain`` and never imports TensorFlow; a run directory or
.keras file goes to ``edgecnn.training.explain`` (imported inside the body).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgecnn.errors import RecipeError


@click.command()
@click.argument("model", type=click.Path(exists=True))
@click.option("--images", "images", multiple=True, type=click.Path(),
              help="Image files or folders to explain (repeatable). Default for a run: its --split.")
@click.option("--out", type=click.Path(file_okay=False), default="explain", show_default=True,
              help="Folder for the PNGs and explain.json.")
@click.option("--compare", "compare", type=click.Path(exists=True, dir_okay=False),
              help="A .tflite (e.g. the int8 export) whose attention is compared with the float model's.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="The run's split to explain when no --images are given.")
@click.option("--layer", help="Layer for Grad-CAM and activation maps (default: the last spatial layer).")
@click.option("--class", "class_index", type=int, help="Class index to explain (default: the top class).")
@click.option("--method", type=click.Choice(["auto", "cam", "occlusion"]), default="auto", show_default=True,
              help=".tflite only: CAM needs a global pooling + dense head; occlusion works on any model.")
@click.option("--occlusion-budget", type=click.IntRange(min=1), default=None,
              help=".tflite with occlusion: the most invokes per image (default 4096).")
@click.option("--limit", type=click.IntRange(min=1), default=200, show_default=True, help="At most this many images.")
@click.option("--list-layers", is_flag=True, help="List the layers --layer accepts, and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def explain(model, images, out, compare, split, layer, class_index, method, occlusion_budget, limit, list_layers,
            as_json):
    """Heatmaps of what MODEL (a run, a .keras or a .tflite file) looks at, and float-vs-int8 attention."""
    path = Path(model)
    if path.suffix == ".tflite":
        summary = _explain_tflite(path, images, out, compare, layer, class_index, method, limit, list_layers,
                                  occlusion_budget)
    else:
        summary = _explain_keras(path, images, out, compare, split, layer, class_index, limit, list_layers)
        if summary is None:
            return
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        what = summary.get("method_text") or f"Grad-CAM on layer {summary['layer']}"
        click.echo(f"explained {summary['images']} image(s) with {what}; skipped {summary['skipped']} unreadable; "
                   f"pictures in {out}")


def _explain_tflite(path, images, out, compare, layer, class_index, method, limit, list_layers, budget=None):
    if compare or layer or list_layers:
        raise RecipeError("--compare, --layer and --list-layers need the float model: give a run directory "
                          "or .keras file, not a .tflite")
    if not images:
        raise RecipeError("a .tflite has no data split; give --images FILE_OR_FOLDER")
    from edgecnn.explain.report import explain_tflite

    return explain_tflite(path, images, out, class_index=class_index, method=method, limit=limit,
                          occlusion_budget=budget)


def _explain_keras(path, images, out, compare, split, layer, class_index, limit, list_layers):
    from edgecnn.training.explain.run_explain import ExplainRequest, explain_run
    from edgecnn.training.explain.run_explain import list_layers as layers_of

    if list_layers:
        for line in layers_of(path):
            click.echo(line)
        return None
    request = ExplainRequest(source=path, out=Path(out), images=tuple(images), split=split, layer=layer,
                             class_index=class_index, compare=Path(compare) if compare else None, limit=limit)
    return explain_run(request, log=lambda line: click.echo(line, err=True))
