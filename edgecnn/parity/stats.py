"""The figures of a parity report, from two score matrices over the same images (numpy only).

- ``top1_agreement``: fraction of images where both pick the same class.
- ``top5_agreement`` (more than 5 classes only): fraction where the reference's top-1 class is
  among the candidate's five best. Ties rank the higher class index first, as scikit-learn's
  ``top_k_accuracy_score`` does (a stable ascending sort, reversed), so the figure is the one
  earlier versions of parity reported with it.
- ``max_abs_error`` / ``mean_abs_error``: of the dequantized output scores, over every image and class.
- each model's accuracy (labelled data), ``accuracy_drop_pp`` = reference minus candidate in
  percentage points, and per class (per-class accuracy = recall) over the classes present.
- ``intervals``: Wilson 95% score intervals of the agreement and of each accuracy, so a figure from
  27 images is not read like one from 2,700 (Wilson, 1927; the interval scikit-learn and statsmodels
  users know as ``proportion_confint(method="wilson")``, written out here because the device half
  carries neither scipy nor statsmodels).
- ``predicted_share``: for each model, the class it answers most and the share of images it gets,
  so that a (near-)constant classifier is visible; ``true_share`` is the most common true class.
"""

from __future__ import annotations

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.parity.report import ParityReport


def top_k_agreement(truth: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Fraction of rows of ``scores`` whose ``k`` best classes include ``truth`` (scikit-learn's tie order)."""
    best = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float(np.mean((best == np.asarray(truth)[:, None]).any(axis=1)))


WILSON_Z = 1.959964  # two-sided 95%


def wilson_interval(successes: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``successes / n`` (n > 0)."""
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def dominant_class(predictions: np.ndarray, labels: list[str]) -> dict:
    """The most frequent class in ``predictions`` and its share of them."""
    counts = np.bincount(predictions, minlength=len(labels))
    top = int(counts.argmax())
    return {"label": labels[top], "share": float(counts[top] / len(predictions))}


def per_class_accuracy(y_true: np.ndarray, predictions: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Recall of each of ``classes`` (all present in ``y_true``): correct / images of that class."""
    return np.array([np.mean(predictions[y_true == cls] == cls) for cls in classes], dtype=np.float64)


def compare_scores(ref_scores: np.ndarray, cand_scores: np.ndarray, *, labels: list[str],
                   y_true: np.ndarray | None = None, paths=None) -> ParityReport:
    """The parity report of two score matrices (N, classes) over the same images."""
    ref_scores = np.asarray(ref_scores, dtype=np.float32)
    cand_scores = np.asarray(cand_scores, dtype=np.float32)
    if ref_scores.shape != cand_scores.shape or ref_scores.ndim != 2 or len(ref_scores) == 0:
        raise ModelError(f"cannot compare scores of shapes {ref_scores.shape} and {cand_scores.shape}")
    n, classes = ref_scores.shape
    ref_pred, cand_pred = ref_scores.argmax(axis=1), cand_scores.argmax(axis=1)
    top5 = top_k_agreement(ref_pred, cand_scores, 5) if classes > 5 else None
    abs_err = np.abs(ref_scores - cand_scores)

    ref_acc = cand_acc = drop = None
    per_class: list[dict] = []
    agree = int(np.sum(ref_pred == cand_pred))
    intervals = {"top1_agreement": wilson_interval(agree, n)}
    shares = {"reference": dominant_class(ref_pred, labels), "candidate": dominant_class(cand_pred, labels)}
    if y_true is not None:
        y_true = np.asarray(y_true)
        ref_acc, cand_acc = float(np.mean(y_true == ref_pred)), float(np.mean(y_true == cand_pred))
        drop = (ref_acc - cand_acc) * 100.0
        per_class = _per_class(y_true, ref_pred, cand_pred, labels)
        intervals["reference_accuracy"] = wilson_interval(int(np.sum(y_true == ref_pred)), n)
        intervals["candidate_accuracy"] = wilson_interval(int(np.sum(y_true == cand_pred)), n)
        shares["truth"] = dominant_class(y_true, labels)
    return ParityReport(
        num_samples=n, num_classes=classes,
        top1_agreement=float(np.mean(ref_pred == cand_pred)), top5_agreement=top5,
        max_abs_error=float(abs_err.max()), mean_abs_error=float(abs_err.mean()),
        reference={"accuracy": ref_acc}, candidate={"accuracy": cand_acc}, accuracy_drop_pp=drop,
        per_class=per_class,
        disagreements=_disagreements(ref_scores, cand_scores, ref_pred, cand_pred, labels, y_true, paths),
        intervals=intervals, predicted_share=shares,
    )


def _per_class(y_true, ref_pred, cand_pred, labels) -> list[dict]:
    present = np.unique(y_true)
    ref_rec = per_class_accuracy(y_true, ref_pred, present)
    cand_rec = per_class_accuracy(y_true, cand_pred, present)
    return [{"label": labels[cls], "support": int((y_true == cls).sum()),
             "reference_accuracy": float(r), "candidate_accuracy": float(c), "delta_pp": float((c - r) * 100.0)}
            for cls, r, c in zip(present, ref_rec, cand_rec)]


def _disagreements(ref_scores, cand_scores, ref_pred, cand_pred, labels, y_true, paths) -> list[dict]:
    return [{
        "path": str(paths[i]) if paths is not None else str(i),
        "label": labels[y_true[i]] if y_true is not None else None,
        "reference": labels[ref_pred[i]], "reference_score": float(ref_scores[i, ref_pred[i]]),
        "candidate": labels[cand_pred[i]], "candidate_score": float(cand_scores[i, cand_pred[i]]),
    } for i in np.flatnonzero(ref_pred != cand_pred)]
