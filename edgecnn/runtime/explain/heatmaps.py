"""Heatmap arithmetic shared by both halves: normalize, resize, overlay, mass in a box, top-region overlap."""

from __future__ import annotations

import cv2
import numpy as np

TOP_FRACTION = 0.2  # "where the model looks": the hottest 20% of pixels


def normalize_map(raw: np.ndarray) -> np.ndarray:
    """Positive evidence only, scaled to 0..1 (a map with no positive evidence stays all zero)."""
    positive = np.maximum(np.asarray(raw, np.float32), 0.0)
    peak = float(positive.max()) if positive.size else 0.0
    return positive / peak if peak > 0 else positive


def resize_map(heat: np.ndarray, height: int, width: int) -> np.ndarray:
    """A coarse map (feature-map resolution) bilinearly resized to ``height`` x ``width``."""
    return cv2.resize(np.asarray(heat, np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def overlay(image_uint8: np.ndarray, heat: np.ndarray, alpha: float = 0.45, *, bgr: bool = False) -> np.ndarray:
    """The image with the heatmap blended on top in the JET colour map (uint8, the image's size and order).

    The map is turned into 8-bit levels at its own (small) size and only then resized, so a 640x480
    camera frame costs one uint8 resize, one colour-map lookup and one blend.
    """
    height, width = image_uint8.shape[:2]
    levels = np.uint8(np.rint(np.clip(np.asarray(heat, np.float32), 0.0, 1.0) * 255))
    levels = cv2.resize(levels, (width, height), interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap(levels, cv2.COLORMAP_JET)  # BGR
    if not bgr:
        colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(image_uint8, 1.0 - alpha, colour, alpha, 0.0)


def mass_inside(heat: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of the map's total mass inside ``box`` = (top, left, bottom, right), in map pixels (clipped to the map)."""
    heat = np.maximum(np.asarray(heat, np.float64), 0.0)
    total = heat.sum()
    if total <= 0:
        return 0.0
    top, left, bottom, right = (max(0, int(v)) for v in box)
    return float(heat[top:bottom, left:right].sum() / total)


def top_mask(heat: np.ndarray, fraction: float = TOP_FRACTION) -> np.ndarray:
    """Boolean mask of the hottest ``fraction`` of pixels (ties broken by position, so exactly that many)."""
    flat = np.asarray(heat, np.float64).ravel()
    count = max(1, int(round(fraction * flat.size)))
    mask = np.zeros(flat.size, bool)
    mask[np.argsort(-flat, kind="stable")[:count]] = True
    return mask.reshape(np.shape(heat))


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Intersection over union of the two maps' hottest-``fraction`` regions."""
    ma, mb = top_mask(a, fraction), top_mask(b, fraction)
    union = np.logical_or(ma, mb).sum()
    return float(np.logical_and(ma, mb).sum() / union) if union else 1.0
