"""The degenerate-model verdict on predictions: one class everywhere, chance level, too few images to decide."""

import math

import numpy as np
import pytest

from edgecnn.training.evaluate.degenerate import CHANCE_ALPHA, ONE_CLASS_SHARE, check_predictions

LABELS = ["cat", "dog"]
BALANCED = np.array([0, 1] * 70)


def test_one_class_everywhere_is_degenerate_and_named():
    verdict = check_predictions(BALANCED, np.ones_like(BALANCED), LABELS, split="train")
    assert verdict.status == "one_class" and verdict.degenerate
    assert (verdict.dominant_label, verdict.dominant_share, verdict.accuracy) == ("dog", 1.0, 0.5)
    assert "predicts 'dog' for 100% of the 140 train images" in verdict.message()


def test_just_below_the_one_class_share_is_judged_by_the_chance_test():
    # 132 of 140 predictions (94.3% < 95%) say "dog": not "one class", but still only 52.9% correct.
    predictions = np.ones_like(BALANCED)
    predictions[np.flatnonzero(BALANCED == 0)[:8]] = 0
    assert predictions.mean() < ONE_CLASS_SHARE
    verdict = check_predictions(BALANCED, predictions, LABELS, split="val")
    assert verdict.status == "chance" and verdict.p_value > CHANCE_ALPHA


def test_a_skewed_dataset_answered_well_is_not_one_class():
    # 96% of the images really are class 0, and the model gets every image right.
    truth = np.array([0] * 192 + [1] * 8)
    verdict = check_predictions(truth, truth, LABELS, split="test")
    assert verdict.status == "ok" and not verdict.degenerate


def test_significance_is_the_binomial_tail_against_the_majority_class():
    truth = np.array([0, 1] * 20)  # chance 0.5 on 40 images
    predictions = truth.copy()
    predictions[:14] = 1 - predictions[:14]  # 26 of 40 correct
    verdict = check_predictions(truth, predictions, LABELS, split="val")
    expected = sum(math.comb(40, k) for k in range(26, 41)) / 2**40  # P(X >= 26), X ~ B(40, 0.5)
    assert verdict.p_value == pytest.approx(expected, rel=1e-9)
    assert verdict.status == ("chance" if expected > CHANCE_ALPHA else "ok")


def test_too_few_images_cannot_decide_and_says_so():
    truth = np.array([0, 1, 0, 1])  # even 4/4 correct has p = 0.5**4 = 0.0625 > 0.05
    verdict = check_predictions(truth, truth, LABELS, split="val")
    assert verdict.status == "undecided" and not verdict.degenerate
    assert "too few" in verdict.message()


def test_a_working_model_passes_silently():
    verdict = check_predictions(BALANCED, BALANCED, LABELS, split="val")
    assert verdict.status == "ok" and verdict.message() == ""
    assert verdict.to_dict()["degenerate"] is False
