"""Drift: do live predictions still look like the predictions on held-out data?

The reference is a summary of the model's outputs on a folder of held-out images (``--drift-reference
FOLDER``, classified once at start-up): the frequency of each top-1 class and the distribution of the
top-1 confidence in 10 equal bins over 0..1. Live top-1 predictions (requests and ``--source``) go into
a sliding window of the last ``window`` predictions; once it holds ``min_samples``, the population
stability index of each distribution against the reference is exported:

    PSI = sum_i (live_i - ref_i) * ln(live_i / ref_i)      (proportions floored at 1e-4)

The usual reading (credit-scoring practice, where PSI comes from): < 0.1 no shift, 0.1-0.25 some,
> 0.25 a significant shift. Crossing ``threshold`` (0.25) logs one warning; so does coming back.
"""

from __future__ import annotations

import collections
import dataclasses
import threading

import numpy as np

CONFIDENCE_BINS = np.linspace(0.0, 1.0, 11)
FLOOR = 1e-4


@dataclasses.dataclass
class Summary:
    class_freq: np.ndarray  # (classes,) proportions
    confidence_hist: np.ndarray  # (10,) proportions
    count: int


def summarize(indices, scores, classes: int) -> Summary:
    indices, scores = np.asarray(indices, int), np.asarray(scores, float)
    class_counts = np.bincount(indices, minlength=classes).astype(float)
    conf_counts, _ = np.histogram(np.clip(scores, 0.0, 1.0), bins=CONFIDENCE_BINS)
    n = max(len(indices), 1)
    return Summary(class_counts / n, conf_counts / n, len(indices))


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e, a = np.maximum(expected, FLOOR), np.maximum(actual, FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


class DriftMonitor:
    def __init__(self, reference: Summary, labels: list[str], *, window: int = 500, min_samples: int = 100,
                 threshold: float = 0.25, warn=None):
        self.reference = reference
        self.index = {label: i for i, label in enumerate(labels)}
        self.classes = len(labels)
        self.window: collections.deque = collections.deque(maxlen=window)
        self.min_samples = min_samples
        self.threshold = threshold
        self.warn = warn
        self.drifting = False
        self._seen = 0
        self._lock = threading.Lock()

    def add(self, label: str | None, score: float) -> None:
        if label not in self.index:  # below a threshold: no class to count
            return
        with self._lock:
            self.window.append((self.index[label], score))
            self._seen += 1
            due = self._seen % 50 == 0  # a check every 50 predictions is enough for a log line
        if due:
            self._check()

    def scores(self) -> dict[str, float] | None:
        """{'class': PSI, 'confidence': PSI}, or None while the window is too small."""
        with self._lock:
            items = list(self.window)
        if len(items) < self.min_samples:
            return None
        live = summarize([i for i, _ in items], [s for _, s in items], self.classes)
        return {"class": psi(self.reference.class_freq, live.class_freq),
                "confidence": psi(self.reference.confidence_hist, live.confidence_hist)}

    def _check(self) -> None:
        scores = self.scores()
        if scores is None:
            return
        if self.warn is None:
            return
        drifting = max(scores.values()) > self.threshold
        if drifting != self.drifting:
            self.drifting = drifting
            state = "drifting from" if drifting else "back in line with"
            self.warn(f"live predictions are {state} the reference (PSI class {scores['class']:.3f}, "
                      f"confidence {scores['confidence']:.3f}; threshold {self.threshold})")
