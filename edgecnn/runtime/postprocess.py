"""From scores to an answer: top-k, a confidence threshold, and temporal smoothing.

Smoothing is an exponential moving average of the scores over frames, so a label does not
flicker when consecutive frames disagree slightly: ``s_t = a * s_{t-1} + (1 - a) * scores_t``.
``a = 0`` turns it off; ``a = 0.6`` at 30 FPS forgets a frame within about a quarter second.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgecnn.errors import RecipeError


@dataclasses.dataclass
class Prediction:
    index: int | None  # class index of the answer, None when below the threshold
    label: str | None
    score: float  # the best score (reported even when below the threshold)
    top_k: list[tuple[str, float]]

    def to_dict(self) -> dict:
        return {"label": self.label, "score": round(self.score, 6),
                "top_k": [{"label": label, "score": round(score, 6)} for label, score in self.top_k]}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (ties: lower index first, on every platform).

    A stable sort, not ``np.argpartition``: argpartition picks among tied scores by its SIMD
    path (seen: the higher index on x86 with AVX-512, the lower on aarch64), so the same model
    gave different labels on the host and on a Pi. Class vectors are short; the sort costs nothing.
    """
    if k == 1:  # the loop's default: argmax returns the first (lowest) index among ties, everywhere
        return np.array([int(np.argmax(scores))])
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    return order[:max(1, min(k, len(order)))]


def check_postprocess_options(k: int, threshold: float, smoothing: float) -> None:
    if k < 1:
        raise RecipeError(f"--top-k must be >= 1, got {k}")
    if not 0.0 <= threshold <= 1.0:
        raise RecipeError(f"--threshold must be between 0 and 1, got {threshold}")
    if not 0.0 <= smoothing < 1.0:
        raise RecipeError(f"--smoothing must be in [0, 1) (0 = off), got {smoothing}")


def predict(scores: np.ndarray, labels: list[str], *, k: int = 1, threshold: float = 0.0) -> Prediction:
    if k == 1:  # the camera loop's default, once per frame: the answer without building an index array
        best = int(np.asarray(scores).argmax())  # the first (lowest) index among ties, like top_k
        score = float(scores[best])
        ranked = [(labels[best], score)]
        return Prediction(index=None, label=None, score=score, top_k=ranked) if score < threshold else \
            Prediction(index=best, label=labels[best], score=score, top_k=ranked)
    order = top_k(scores, k)
    best = int(order[0])
    score = float(scores[best])
    ranked = [(labels[int(i)], float(scores[int(i)])) for i in order]
    if score < threshold:
        return Prediction(index=None, label=None, score=score, top_k=ranked)
    return Prediction(index=best, label=labels[best], score=score, top_k=ranked)


class EmaSmoother:
    """Exponential moving average of score vectors; ``reset`` after a gap in the stream."""

    def __init__(self, alpha: float):
        if not 0.0 <= alpha < 1.0:
            raise RecipeError(f"smoothing must be in [0, 1), got {alpha}")
        self.alpha = float(alpha)
        self._state: np.ndarray | None = None

    def reset(self) -> None:
        self._state = None

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        if self.alpha == 0.0:
            return scores
        if self._state is None:
            self._state = np.array(scores, dtype=np.float32)
        else:
            self._state *= self.alpha
            self._state += (1.0 - self.alpha) * scores
        return self._state.copy()
