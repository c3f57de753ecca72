"""PNG plots of a run: training curves and confusion matrices.

Uses matplotlib's object API (``Figure``) rather than pyplot, so no global backend is chosen
and nothing needs a display. Files are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.atomic import atomic_path


def _save(fig, path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return Path(path)


def plot_curves(rows: list[dict], path, *, best_epoch: int | None = None, title: str = "") -> Path:
    """Loss and accuracy per epoch, training and validation, with the restored (best) epoch marked."""
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in rows]
    fig = Figure(figsize=(9, 3.6))
    for ax, metric, name in zip(fig.subplots(1, 2), ("loss", "accuracy"), ("loss", "accuracy")):
        ax.plot(epochs, [row.get(metric) for row in rows], marker="o", ms=3, label="train")
        ax.plot(epochs, [row.get(f"val_{metric}") for row in rows], marker="o", ms=3, label="validation")
        if best_epoch is not None:
            ax.axvline(best_epoch, color="gray", linestyle="--", linewidth=1, label=f"best (epoch {best_epoch})")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion(matrix, labels: list[str], path, *, title: str = "") -> Path:
    """A confusion matrix (rows: true class, columns: predicted) with counts in the cells."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    n = len(labels)
    side = min(12.0, 2.5 + 0.45 * n)
    fig = Figure(figsize=(side, side))
    ax = fig.subplots()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=90 if n > 8 else 0)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if n <= 30:  # counts stay legible up to about 30 classes
        threshold = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(j, i, str(count), ha="center", va="center", fontsize=8,
                    color="white" if count > threshold else "black")
    if title:
        ax.set_title(title)
    return _save(fig, path)
