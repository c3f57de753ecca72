"""Occlusion sensitivity (Zeiler & Fergus 2014): how much the class score drops when a patch is hidden.

Model-agnostic: it needs only a function from a batch of uint8 images to scores. The patch is
filled with the normalization mean (a zero model input), patches are scored in batches, and
each pixel's evidence is the mean drop over the patches that covered it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgecnn.errors import ModelError

DEFAULT_BUDGET = 4096  # invokes per image we accept before refusing


@dataclasses.dataclass(frozen=True)
class OcclusionPlan:
    patch: int
    stride: int
    batch: int = 16
    budget: int = DEFAULT_BUDGET

    @classmethod
    def for_size(cls, height: int, width: int, **kwargs) -> "OcclusionPlan":
        """A patch of 1/6 of the shorter side, moved by half a patch (a 11x11 grid or so)."""
        patch = max(1, min(height, width) // 6)
        return cls(patch=patch, stride=max(1, patch // 2), **kwargs)

    def positions(self, height: int, width: int) -> list[tuple[int, int]]:
        rows = range(0, max(1, height - self.patch + 1), self.stride)
        cols = range(0, max(1, width - self.patch + 1), self.stride)
        return [(r, c) for r in rows for c in cols]


def occlusion_map(score_batch, pixels: np.ndarray, class_index: int, base_score: float, spec,
                  plan: OcclusionPlan) -> np.ndarray:
    """Mean score drop per pixel (H x W float32) for ``class_index`` on model-size uint8 ``pixels``."""
    height, width = pixels.shape[:2]
    positions = plan.positions(height, width)
    if len(positions) > plan.budget:
        raise ModelError(f"occlusion would need {len(positions)} invokes per image, over the budget of "
                         f"{plan.budget}; raise the patch size or the budget")
    fill = np.clip(np.rint(spec.mean), 0, 255).astype(np.uint8)
    drop = np.zeros((height, width), np.float64)
    count = np.zeros((height, width), np.float64)
    for start in range(0, len(positions), plan.batch):
        chunk = positions[start:start + plan.batch]
        batch = np.repeat(pixels[None], len(chunk), axis=0)
        for i, (r, c) in enumerate(chunk):
            batch[i, r:r + plan.patch, c:c + plan.patch] = fill
        scores = score_batch(batch)[:, class_index]
        for (r, c), score in zip(chunk, scores):
            drop[r:r + plan.patch, c:c + plan.patch] += base_score - float(score)
            count[r:r + plan.patch, c:c + plan.patch] += 1
    return (drop / np.maximum(count, 1)).astype(np.float32)
