"""``edgecnn explain RUN``: Grad-CAM, filters and activation maps of the float model, and float vs candidate.

The float model is the run's ``float.keras`` (or a .keras file); its preprocessing comes from the
run's recipe, so images are read exactly as training read them. ``--compare CANDIDATE`` explains
the same images with the candidate .tflite's TF-free CAM (or occlusion), for the float model's
top class, and reports the attention agreement (``agreement``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from edgecnn.atomic import atomic_path
from edgecnn.errors import RunDirError
from edgecnn.rundir import RunDir
from edgecnn.runtime.explain.explainer import TFLiteExplainer
from edgecnn.runtime.explain.heatmaps import normalize_map, resize_map
from edgecnn.explain.images import display_rgb, items_of, load_for_explain
from edgecnn.runtime.preprocess import InputSpec, normalize
from edgecnn.training.evaluate.keras_predictor import KerasPredictor
from edgecnn.training.explain import figures
from edgecnn.explain.agreement import compare_maps, format_summary, summarize
from edgecnn.training.explain.gradcam import (activations, check_class, first_conv_filters, grad_cam, resolve_layer,
                                              spatial_layers)


@dataclasses.dataclass
class ExplainRequest:
    source: Path  # run directory or .keras file
    out: Path
    images: tuple = ()  # files/folders; empty: the run's split
    split: str = "test"
    layer: str | None = None
    class_index: int | None = None
    compare: Path | None = None
    limit: int = 200


def keras_source(path) -> KerasPredictor:
    path = Path(path)
    model_path = RunDir(path).require(RunDir(path).float_model, "edgecnn train") if path.is_dir() else path
    predictor = KerasPredictor(model_path)
    if predictor.spec is None:
        predictor.spec = InputSpec.from_input_shape([1, *predictor.input_shape])
    if predictor.labels is None:
        predictor.labels = [str(i) for i in range(predictor.num_classes)]
    return predictor


def list_layers(source) -> list[str]:
    """'name  HxWxC' for every layer Grad-CAM and activation maps can use."""
    model = keras_source(source).model
    return [f"{name:<28} {'x'.join(str(d) for d in model.get_layer(name).output_shape[1:])}"
            for name in spatial_layers(model)]


def _items(request: ExplainRequest):
    if request.images:
        return items_of(request.images)
    run = RunDir(request.source if request.source.is_dir() else request.source.parent)
    if not run.split.is_file():
        raise RunDirError(f"{request.source} has no split.json to take {request.split} images from; give --images")
    return run.split_items(request.split)


def explain_run(request: ExplainRequest, *, log=print) -> dict:
    """Write the PNGs and explain.json (and agreement.json with --compare) to ``request.out``; return the summary."""
    source = keras_source(request.source)
    model, spec, labels = source.model, source.spec, source.labels
    check_class(model, request.class_index)
    layer = resolve_layer(model, request.layer)
    candidate = TFLiteExplainer(request.compare) if request.compare else None
    if candidate is not None:
        candidate.check_class(request.class_index)
    pixels, kept, skipped = load_for_explain(_items(request), spec, limit=request.limit)
    maps, classes, probs = grad_cam(model, normalize(pixels, spec), layer=layer, class_index=request.class_index)
    heat = np.stack([resize_map(normalize_map(m), spec.height, spec.width) for m in maps])
    rgb = np.stack([display_rgb(p, spec) for p in pixels])
    titles = [_title(labels, k, p, truth) for k, p, (_, truth) in zip(classes, probs, kept)]
    order, wrong = _mistakes_first(classes, kept)
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    figures.heatmap_grid(rgb[order], heat[order], [titles[i] for i in order], out / "gradcam.png",
                         suptitle=f"Grad-CAM on {layer}" + (f"; the {wrong} misclassified first" if wrong else ""))
    figures.channel_grid(first_conv_filters(model), out / "filters.png", title="first convolution's filters")
    figures.channel_grid(activations(model, normalize(pixels[:1], spec), layer)[0], out / f"activations_{layer}.png",
                         title=f"{layer} activations for {Path(kept[0][0]).name}")
    summary = {"model": str(request.source), "layer": layer, "method": "grad-cam", "images": len(kept),
               "skipped": skipped, "results": [
                   {"image": str(path), "class_index": int(k), "label": labels[k], "score": float(p[k]),
                    "true_label": labels[t] if 0 <= t < len(labels) else None}
                   for (path, t), k, p in zip(kept, classes, probs)],
               "misclassified": wrong,
               "shown": [str(kept[i][0]) for i in order[:figures.MAX_IMAGES]]}
    if candidate is not None:
        summary["agreement"] = _compare(candidate, pixels, kept, classes, heat, rgb, labels, out)
        for line in format_summary(summary["agreement"]):
            log(line)
    _write_json(out / "explain.json", summary)
    return summary


def _compare(candidate, pixels, kept, classes, heat, rgb, labels, out: Path) -> dict:
    explained = [candidate.explain_pixels(p, int(k)) for p, k in zip(pixels, classes)]
    names = [str(path) for path, _ in kept]
    rows = compare_maps(heat, [e.heatmap for e in explained], names, classes)
    summary = summarize(rows, labels) | {"candidate": str(candidate.model_path), "candidate_method": candidate.method}
    order = [names.index(m["name"]) for m in summary["most_moved"]]
    figures.side_by_side(rgb[order], heat[order], [explained[i].heatmap for i in order],
                         [f"{labels[classes[i]]} rho {rows[i].spearman:.2f}" for i in order],
                         out / "attention_moved.png", names=("float Grad-CAM", f"{candidate.method} (candidate)"))
    _write_json(out / "agreement.json", summary)
    return summary


def _mistakes_first(classes, kept) -> tuple[np.ndarray, int]:
    """(image order for the grid, misclassified first; how many are misclassified: true label known, not the answer)."""
    wrong = [0 <= truth != k for k, (_, truth) in zip(classes, kept)]
    return np.array(sorted(range(len(kept)), key=lambda i: not wrong[i]), int), int(sum(wrong))


def _title(labels, k, p, truth) -> str:
    text = f"{labels[k]} {p[k]:.2f}"
    return text if truth < 0 or truth == k else f"{text} (true {labels[truth]})"


def _write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2))
