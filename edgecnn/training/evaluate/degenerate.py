"""Is this model degenerate? One class for nearly every image, or no better than chance.

A model that predicts one class everywhere still has a validation accuracy (the share of that
class), still converts, quantizes and passes parity against itself. It must never reach a device
unnoticed, so ``train``, ``evaluate`` and the pipeline all ask ``check_predictions``.

Two tests, on predictions made in inference mode:
- one class: the most frequent prediction covers at least ``ONE_CLASS_SHARE`` of the images,
  although that class is not that common among the true labels;
- chance: the number of correct answers is not significantly above what always answering the
  most common true class would get (a one-sided binomial test at ``CHANCE_ALPHA``, scipy's
  ``binomtest``). With very few images even a perfect score is not significant; the verdict is
  then "cannot decide", and says so, rather than a pass.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.stats import binomtest  # scipy comes with scikit-learn, the training half's metrics

# "Nearly every image": 95% of predictions in one class (ONE_CLASS_SHARE). A working classifier on data
# where one class really is that common is caught by the chance test instead, hence the true-share
# margin. Defined beside the parity gates, which apply the same rule.
from edgecnn.parity.gates import ONE_CLASS_SHARE, TRUE_SHARE_MARGIN

CHANCE_ALPHA = 0.05

LIKELY_CAUSES = (
    "likely causes: too few epochs for the model to leave its starting point, too few images per class, "
    "classes that look alike at this input size, or labels in the wrong folders; try a longer training "
    "(--epochs, --patience), --weights imagenet or another trained run, a larger --size, and check the folders"
)


@dataclasses.dataclass
class Verdict:
    """What ``check_predictions`` found, in numbers and in words."""

    status: str  # "ok" | "one_class" | "chance" | "undecided"
    split: str
    num_samples: int
    accuracy: float
    chance_accuracy: float  # always answering the most common true class
    p_value: float  # P(at least this many correct | chance), one-sided
    dominant_label: str
    dominant_share: float  # share of predictions that are dominant_label

    @property
    def degenerate(self) -> bool:
        return self.status in ("one_class", "chance")

    def message(self) -> str:
        """One line for the user; empty when the model is fine."""
        seen = (f"{self.accuracy:.1%} accuracy on {self.num_samples} {self.split} images "
                f"(always answering the most common class gets {self.chance_accuracy:.1%})")
        if self.status == "one_class":
            return (f"the model predicts {self.dominant_label!r} for {self.dominant_share:.0%} of the "
                    f"{self.num_samples} {self.split} images, {seen}: it is degenerate; {LIKELY_CAUSES}")
        if self.status == "chance":
            return (f"the model is no better than chance: {seen}, p = {self.p_value:.2f}; it is degenerate; "
                    f"{LIKELY_CAUSES}")
        if self.status == "undecided":
            return (f"cannot tell whether the model beats chance: {self.num_samples} {self.split} images are too "
                    f"few for any score to be significant ({seen}); add images to decide")
        return ""

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "degenerate": self.degenerate}


def check_predictions(y_true, y_pred, labels: list[str], *, split: str) -> Verdict:
    """The verdict on class indices ``y_pred`` against ``y_true`` (both 1-D, same length, non-empty)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or not len(y_true):
        raise ValueError(f"need two equal, non-empty 1-D label arrays, got {y_true.shape} and {y_pred.shape}")
    n = len(y_true)
    predicted = np.bincount(y_pred, minlength=len(labels)) / n
    truth = np.bincount(y_true, minlength=len(labels)) / n
    dominant = int(predicted.argmax())
    correct = int((y_true == y_pred).sum())
    chance = float(truth.max())
    p_value = float(binomtest(correct, n, chance, alternative="greater").pvalue) if chance < 1 else 1.0
    best_possible = float(binomtest(n, n, chance, alternative="greater").pvalue) if chance < 1 else 1.0
    if predicted[dominant] >= ONE_CLASS_SHARE and truth[dominant] < ONE_CLASS_SHARE - TRUE_SHARE_MARGIN:
        status = "one_class"
    elif best_possible > CHANCE_ALPHA:
        status = "undecided"
    elif p_value > CHANCE_ALPHA:
        status = "chance"
    else:
        status = "ok"
    return Verdict(status=status, split=split, num_samples=n, accuracy=correct / n, chance_accuracy=chance,
                   p_value=p_value, dominant_label=str(labels[dominant]), dominant_share=float(predicted[dominant]))
