"""``parity --attention``: do the reference and the candidate look at the same places?

Both models explain the same images for the reference's top class; ``explain.agreement`` compares
the heatmaps (Spearman of the maps, IoU of their hottest 20%), overall, per class, and names the
images whose attention moved most. An *attention source* is anything with ``method`` (a word for
the report) and ``heatmaps(rgb_images, classes) -> (maps at its input size, classes used)``,
``classes`` None meaning "each image's top class". ``TFLiteAttention`` (here, TF-free) uses the
.tflite's CAM, or occlusion when it has no pooling + dense head; the training half supplies
``KerasAttention`` (Grad-CAM) for a .keras reference, as it supplies the Keras predictor.
"""

from __future__ import annotations

import numpy as np

from edgecnn.errors import DataError
from edgecnn.explain.agreement import compare_maps, format_summary, summarize
from edgecnn.runtime.explain.explainer import TFLiteExplainer
from edgecnn.runtime.explain.heatmaps import resize_map
from edgecnn.runtime.preprocess import read_image

MAX_IMAGES = 200  # heatmaps are dearer than scores: the attention summary uses at most this many images


class TFLiteAttention:
    def __init__(self, path, *, threads: int | None = None):
        self.explainer = TFLiteExplainer(path, threads=threads)
        self.method = self.explainer.method

    def heatmaps(self, rgb_images, classes=None):
        wanted = [None] * len(rgb_images) if classes is None else [int(k) for k in classes]
        explained = [self.explainer.explain(image, k) for image, k in zip(rgb_images, wanted)]
        return [e.heatmap for e in explained], np.array([e.class_index for e in explained])


def attention_agreement(reference, candidate, paths, labels, *, limit: int = MAX_IMAGES) -> dict:
    """The agreement summary (``explain.agreement.summarize``) over the first ``limit`` decodable ``paths``."""
    images, names, skipped = [], [], 0
    for path in paths:
        if len(images) >= limit:
            break
        try:
            images.append(read_image(path))
            names.append(str(path))
        except DataError:
            skipped += 1
    if not images:
        raise DataError(f"none of the {len(paths)} images could be decoded for --attention; check the files")
    ref_maps, classes = reference.heatmaps(images, None)
    cand_maps, _ = candidate.heatmaps(images, classes)
    # Models of different input sizes: compare at the reference's size.
    cand_maps = [m if m.shape == r.shape else resize_map(m, *r.shape) for m, r in zip(cand_maps, ref_maps)]
    summary = summarize(compare_maps(ref_maps, cand_maps, names, classes), labels)
    return summary | {"reference_method": reference.method, "candidate_method": candidate.method,
                      "explained_class": "the reference's top class", "skipped": skipped}


def format_attention(summary: dict) -> list[str]:
    """The summary's terminal lines, saying which methods made the maps."""
    return [f"attention ({summary['reference_method']} on the reference, {summary['candidate_method']} on the "
            "candidate, for the reference's top class):"] + ["  " + line for line in format_summary(summary)]
