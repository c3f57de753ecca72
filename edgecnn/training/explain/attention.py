"""Grad-CAM of a Keras model as an attention source for ``parity --attention`` (see ``parity.attention``)."""

from __future__ import annotations

import numpy as np

from edgecnn.runtime.explain.heatmaps import normalize_map, resize_map
from edgecnn.runtime.preprocess import model_pixels_from_rgb, normalize
from edgecnn.training.explain.gradcam import grad_cam

BATCH = 64


class KerasAttention:
    method = "Grad-CAM"

    def __init__(self, predictor):
        """``predictor``: a ``KerasPredictor`` whose ``spec`` is resolved (parity does that first)."""
        self.model, self.spec = predictor.model, predictor.spec

    def heatmaps(self, rgb_images, classes=None):
        x = np.stack([normalize(model_pixels_from_rgb(image, self.spec), self.spec) for image in rgb_images])
        if classes is None:
            parts = [grad_cam(self.model, x[i:i + BATCH]) for i in range(0, len(x), BATCH)]
            maps, used = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        else:
            used, maps = np.asarray(classes, int), [None] * len(x)
            for k in np.unique(used):  # grad_cam explains one class per call
                rows = np.flatnonzero(used == k)
                for row, m in zip(rows, grad_cam(self.model, x[rows], class_index=int(k))[0]):
                    maps[row] = m
        heat = [resize_map(normalize_map(m), self.spec.height, self.spec.width) for m in maps]
        return heat, used
