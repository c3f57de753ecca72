"""PNG grids of explanations (matplotlib's object API, no display needed; written atomically)."""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.explain.heatmaps import overlay
from edgecnn.training.plots import _save

MAX_IMAGES = 32  # one grid page; the JSON lists every image


def heatmap_grid(images, heatmaps, titles, path, *, suptitle: str = ""):
    """Pairs of (image, heatmap overlay) with ``titles`` (label, score) above each pair, 4 pairs a row."""
    from matplotlib.figure import Figure

    count = min(len(images), MAX_IMAGES)
    cols = min(4, count)
    rows = -(-count // cols)
    fig = Figure(figsize=(3.2 * cols, 1.8 * rows + 0.4))
    axes = np.atleast_2d(fig.subplots(rows, 2 * cols, squeeze=False))
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(count):
        r, c = divmod(i, cols)
        axes[r, 2 * c].imshow(images[i])
        axes[r, 2 * c + 1].imshow(overlay(images[i], heatmaps[i]))
        axes[r, 2 * c].set_title(titles[i], fontsize=7, loc="left")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path)


def side_by_side(images, left, right, titles, path, *, names=("float", "int8")):
    """Rows of (image, left overlay, right overlay): where attention moved between two models."""
    from matplotlib.figure import Figure

    count = max(1, min(len(images), MAX_IMAGES))
    fig = Figure(figsize=(6.6, 2.0 * count))
    axes = fig.subplots(count, 3, squeeze=False)
    for i in range(min(len(images), count)):
        for ax, picture, head in zip(axes[i], (images[i], overlay(images[i], left[i]), overlay(images[i], right[i])),
                                     ("image", *names)):
            ax.imshow(picture)
            ax.axis("off")
            ax.set_title(f"{head}: {titles[i]}" if head == "image" else head, fontsize=7, loc="left")
    return _save(fig, path)


def channel_grid(maps: np.ndarray, path, *, title: str, max_channels: int = 32):
    """One small picture per channel of an H x W x C array (activation maps) or of filters (N, h, w, c)."""
    from matplotlib.figure import Figure

    if maps.ndim == 3:  # activations: H x W x C -> C pictures
        pictures = [maps[..., i] for i in range(min(maps.shape[-1], max_channels))]
    else:  # filters: N x h x w x c -> N pictures (RGB when c == 3, scaled to 0..1 together)
        low, high = float(maps.min()), float(maps.max())
        scaled = (maps - low) / (high - low or 1.0)
        pictures = [f if f.shape[-1] == 3 else f.mean(-1) for f in scaled[:max_channels]]
    cols = min(8, len(pictures))
    rows = -(-len(pictures) // cols)
    fig = Figure(figsize=(1.2 * cols, 1.2 * rows + 0.4))
    for ax, picture in zip(np.ravel(fig.subplots(rows, cols, squeeze=False)), pictures + [None] * (rows * cols)):
        ax.axis("off")
        if picture is not None:
            ax.imshow(picture, cmap=None if picture.ndim == 3 else "viridis", interpolation="nearest")
    fig.suptitle(title, fontsize=9)
    return _save(fig, path)
