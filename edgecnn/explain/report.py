"""``edgecnn explain MODEL.tflite``: heatmaps for images, written as PNG (OpenCV) and JSON, without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from edgecnn.atomic import atomic_path
from edgecnn.runtime.explain.explainer import TFLiteExplainer
from edgecnn.runtime.explain.heatmaps import overlay
from edgecnn.explain.images import MAX_IMAGES, display_rgb, items_of, load_for_explain

CELL = 128  # pixels per picture in the montage
METHOD_TEXT = {"cam": "class activation map (global pooling + dense head)",
               "occlusion": "occlusion sensitivity (no global pooling + dense head)"}


def explain_tflite(model_path, images, out, *, class_index: int | None = None, method: str = "auto",
                   threads: int | None = None, limit: int = MAX_IMAGES, occlusion_budget: int | None = None) -> dict:
    """Explain every image; write ``out/explain.json`` and ``out/heatmaps.png``; return the summary."""
    explainer = TFLiteExplainer(model_path, method=method, threads=threads, occlusion_budget=occlusion_budget)
    explainer.check_class(class_index)  # before any decoding: a wrong index is a one-line error at once
    pixels, kept, skipped = load_for_explain(items_of(images), explainer.spec, limit=limit)
    rows, pictures = [], []
    for image, (path, _) in zip(pixels, kept):
        e = explainer.explain_pixels(image, class_index)
        rgb = display_rgb(image, explainer.spec)
        rows.append({"image": str(path), "class_index": e.class_index, "label": explainer.labels[e.class_index],
                     "score": round(e.score, 6), "method": e.method})
        pictures.append(_pair(rgb, e.heatmap, f"{explainer.labels[e.class_index]} {e.score:.2f}"))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"model": str(model_path), "method": explainer.method, "method_text": METHOD_TEXT[explainer.method],
               "images": len(rows), "skipped": skipped, "results": rows}
    _write_png(out / "heatmaps.png", _montage(pictures))
    with atomic_path(out / "explain.json") as tmp:
        Path(tmp).write_text(json.dumps(summary, indent=2))
    return summary


def _pair(rgb: np.ndarray, heat: np.ndarray, title: str) -> np.ndarray:
    big = cv2.resize(rgb, (CELL, CELL), interpolation=cv2.INTER_NEAREST)
    pair = np.concatenate([big, overlay(big, heat)], axis=1)
    band = np.full((18, pair.shape[1], 3), 255, np.uint8)
    cv2.putText(band, title[:40], (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, pair], axis=0)


def _montage(pictures, cols: int = 4) -> np.ndarray:
    blank = np.full_like(pictures[0], 255)
    padded = pictures + [blank] * (-len(pictures) % cols)
    rows = [np.concatenate(padded[i:i + cols], axis=1) for i in range(0, len(padded), cols)]
    return np.concatenate(rows[:16], axis=0)  # at most 64 pictures; the JSON lists every image


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(encoded.tobytes())
