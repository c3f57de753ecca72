"""Does quantization move where the model looks? Agreement of two sets of heatmaps over the same images.

Per image: Spearman's rank correlation of the two maps' pixels (ties ranked by their mean, as
scipy's ``spearmanr`` does; written in numpy here because the device install has no scipy, and
checked against scipy in the tests) and the IoU of their hottest 20% regions. A map with no positive evidence anywhere (all zero:
what a collapsed int8 model gives) has no ranking; against a real map it counts as rank
correlation 0, against another empty map as 1, so collapse lowers the figures instead of
vanishing from them. Summaries are given overall and per class (the explained class).
TF-free (numpy only): ``explain --compare``, ``parity --attention`` and the report all use it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgecnn.runtime.explain.heatmaps import TOP_FRACTION, top_iou


@dataclasses.dataclass
class ImageAgreement:
    name: str
    class_index: int
    spearman: float
    iou: float


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (scipy's ``rankdata(method="average")``)."""
    values = np.ravel(values)
    order = np.argsort(values, kind="stable")
    _, first, counts = np.unique(values[order], return_index=True, return_counts=True)
    result = np.empty(values.size, np.float64)
    result[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return result


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a), np.ravel(b)
    flat_a, flat_b = np.ptp(a) == 0, np.ptp(b) == 0
    if flat_a or flat_b:
        return 1.0 if flat_a and flat_b else 0.0
    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def compare_maps(reference, candidate, names, classes, *, fraction: float = TOP_FRACTION) -> list[ImageAgreement]:
    """One ImageAgreement per image; ``reference``/``candidate`` are same-shaped maps in the same order."""
    return [ImageAgreement(str(n), int(k), rank_correlation(a, b), top_iou(a, b, fraction))
            for a, b, n, k in zip(reference, candidate, names, classes)]


def summarize(rows: list[ImageAgreement], labels: list[str], *, most_moved: int = 5) -> dict:
    """Means and lowest values overall and per class, and the images whose attention moved most."""
    def stats(subset):
        rho = np.array([r.spearman for r in subset])
        iou = np.array([r.iou for r in subset])
        return {"images": len(subset), "spearman_mean": float(rho.mean()), "spearman_min": float(rho.min()),
                "top20_iou_mean": float(iou.mean()), "top20_iou_min": float(iou.min())}

    per_class = {labels[k]: stats([r for r in rows if r.class_index == k])
                 for k in sorted({r.class_index for r in rows})}
    moved = sorted(rows, key=lambda r: (r.spearman, r.iou))[:most_moved]
    return {"overall": stats(rows), "per_class": per_class,
            "most_moved": [dataclasses.asdict(r) | {"label": labels[r.class_index]} for r in moved]}


def format_summary(summary: dict) -> list[str]:
    o = summary["overall"]
    lines = [f"attention agreement over {o['images']} images: Spearman {o['spearman_mean']:.3f} "
             f"(min {o['spearman_min']:.3f}), top-20% IoU {o['top20_iou_mean']:.3f} (min {o['top20_iou_min']:.3f})"]
    for label, s in summary["per_class"].items():
        lines.append(f"  {label:<16} n={s['images']:<4} Spearman {s['spearman_mean']:.3f}  IoU {s['top20_iou_mean']:.3f}")
    lines.append("attention moved most:")
    lines += [f"  {m['name']} ({m['label']}): Spearman {m['spearman']:.3f}, IoU {m['iou']:.3f}"
              for m in summary["most_moved"]]
    return lines
