"""Gates that mean something: intervals, degenerate classifiers, and gates finer than the split can decide."""

import numpy as np
import pytest
from scipy.stats import binomtest

from edgecnn.errors import GateFailed
from edgecnn.parity.gates import check_gates
from edgecnn.parity.report import format_report
from edgecnn.parity.stats import compare_scores, wilson_interval

LABELS = ["a", "b", "c"]


def one_hot(predictions, classes=3):
    scores = np.full((len(predictions), classes), 0.1, np.float32)
    scores[np.arange(len(predictions)), predictions] = 0.8
    return scores


def report_of(truth, reference, candidate):
    return compare_scores(one_hot(reference), one_hot(candidate), labels=LABELS, y_true=np.asarray(truth))


@pytest.mark.parametrize("successes,n", [(0, 27), (1, 27), (26, 27), (27, 27), (263, 270), (50, 100), (3, 7)])
def test_wilson_interval_matches_scipy(successes, n):
    expected = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson_interval(successes, n) == pytest.approx((expected.low, expected.high), abs=1e-6)


def test_report_carries_and_prints_the_intervals():
    truth = np.arange(30) % 3
    report = report_of(truth, truth, truth)
    for role in (report.reference, report.candidate):
        role.update(path="m.tflite", description="int8", input="8x8x3")
    assert report.intervals["candidate_accuracy"] == pytest.approx(wilson_interval(30, 30))
    assert "[95% CI 88.6% to 100.0%]" in format_report(report)  # Wilson for 30/30


def test_a_constant_classifier_fails_every_gate_even_against_itself():
    truth = np.arange(60) % 3
    constant = np.zeros(60, np.int64)
    report = report_of(truth, constant, constant)
    assert report.top1_agreement == 1.0 and report.accuracy_drop_pp == 0.0  # what the old gates looked at
    with pytest.raises(GateFailed) as caught:
        check_gates(report, max_disagreement=1.0, max_accuracy_drop=100.0)
    assert "the reference answers 'a' for 100% of the images" in str(caught.value)
    assert "the candidate answers 'a' for 100% of the images" in str(caught.value)


def test_a_chance_level_classifier_fails_although_it_answers_every_class():
    truth = np.arange(60) % 3
    shuffled = np.roll(truth, 1)  # every class answered equally often, 0% accuracy
    with pytest.raises(GateFailed, match=r"the candidate's accuracy 0.0% is no better than always answering 'a'"):
        check_gates(report_of(truth, truth, shuffled), max_disagreement=1.0)


def test_a_good_model_on_data_where_one_class_dominates_passes():
    truth = np.array([0] * 57 + [1, 2, 1])  # 95% of one class, the model right everywhere
    assert check_gates(report_of(truth, truth, truth), max_disagreement=0.02, max_accuracy_drop=2.0) == []


def test_no_gate_no_verdict():
    truth = np.arange(60) % 3
    constant = np.zeros(60, np.int64)
    assert check_gates(report_of(truth, constant, constant)) == []


def test_a_gate_finer_than_one_image_says_it_cannot_decide():
    truth = np.arange(27) % 3
    flipped = truth.copy()
    flipped[0] = 1  # one image of 27: 3.70 pp
    with pytest.raises(GateFailed) as caught:
        check_gates(report_of(truth, truth, flipped), max_accuracy_drop=1.0)
    message = str(caught.value)
    assert "accuracy drop 3.70 pp" in message
    assert ("--max-accuracy-drop 1 pp is finer than one image of this 27-image split (3.70 pp), so the split "
            "cannot decide it") in message
    assert "about 100 images would" in message
    # No flip passes, with the same warning: passing does not prove the drop is below 1 pp.
    warnings = check_gates(report_of(truth, truth, truth), max_accuracy_drop=1.0, max_disagreement=0.01)
    assert len(warnings) == 2 and "about 100 images would" in warnings[1] and "--max-disagreement 1.00%" in warnings[0]


def test_a_gate_the_split_can_resolve_gives_no_warning():
    truth = np.arange(270) % 3
    assert check_gates(report_of(truth, truth, truth), max_accuracy_drop=1.0, max_disagreement=0.01) == []
    assert check_gates(report_of(truth[:27], truth[:27], truth[:27]), max_disagreement=0.0) == []  # "no flip" is exact
