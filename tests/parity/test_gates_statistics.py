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


# --- boundaries the mutation score (tools/mutation_score.sh) found untested --------------------------

def test_zero_and_fractional_accuracy_drop_gates_are_valid():
    truth = np.arange(30) % 3
    report = report_of(truth, truth, truth)
    assert check_gates(report, max_accuracy_drop=0.0) == []  # "no drop at all" is a gate, not an error
    large = np.arange(300) % 3  # 300 images: one is 0.33 pp, so half a point is decidable
    assert check_gates(report_of(large, large, large), max_accuracy_drop=0.5) == []


def test_every_failure_is_listed_and_the_message_says_what_it_means():
    truth = np.arange(30) % 3
    worse = truth.copy()
    worse[:3] = (worse[:3] + 1) % 3  # 3 of 30 flipped, all were right: 10% disagreement, 10 pp drop
    with pytest.raises(GateFailed) as caught:
        check_gates(report_of(truth, truth, worse), max_disagreement=0.05, max_accuracy_drop=5.0)
    message = str(caught.value)
    assert message.startswith("parity gate failed: disagreement 10.00% (3 of 30 images) exceeds --max-disagreement "
                              "5.00%; accuracy drop 10.00 pp (100.00% -> 90.00%) exceeds --max-accuracy-drop 5 pp")
    assert message.endswith("; the candidate does not match its reference")


def test_unlabelled_data_cannot_take_an_accuracy_gate():
    report = compare_scores(one_hot([0, 1, 2]), one_hot([0, 1, 2]), labels=LABELS)
    with pytest.raises(Exception, match=r"^--max-accuracy-drop needs labelled images \(one subfolder per class, "
                                        r"or a run directory\)$"):
        check_gates(report, max_accuracy_drop=1.0)


@pytest.mark.parametrize("option, limit, shown, step, needed", [
    ("max_accuracy_drop", 2.0, "--max-accuracy-drop 2 pp", "(3.70 pp)", 50),    # 100 pp / 2 pp
    ("max_disagreement", 0.02, "--max-disagreement 2.00%", "(3.70%)", 50),      # 1 / 0.02
])
def test_the_warning_counts_the_images_a_gate_needs(option, limit, shown, step, needed):
    truth = np.arange(27) % 3
    warnings = check_gates(report_of(truth, truth, truth), **{option: limit})
    assert warnings == [f"{shown} is finer than one image of this 27-image split {step}, so the split cannot "
                        f"decide it: any flipped image fails it and no flip does not prove it; "
                        f"about {needed} images would"]


def test_a_gate_of_exactly_one_image_is_decidable():
    truth = np.arange(50) % 3
    assert check_gates(report_of(truth, truth, truth), max_disagreement=0.02, max_accuracy_drop=2.0) == []


def test_a_model_answering_a_class_absent_from_the_truth_is_degenerate():
    truth = np.arange(40) % 2  # classes a and b only
    with pytest.raises(GateFailed, match="the candidate answers 'c' for 100% of the images"):
        check_gates(report_of(truth, truth, np.full(40, 2)), max_disagreement=1.0)


def test_one_class_rule_at_its_boundaries():
    # 95% of the answers in one class is the rule's threshold; 20 images, 'a' is half the truth.
    truth = np.array([0] * 10 + [1] * 10)
    answers = np.array([0] * 19 + [1])
    with pytest.raises(GateFailed, match=r"the candidate answers 'a' for 95% of the images \(a degenerate model\)"):
        check_gates(report_of(truth, truth, answers), max_disagreement=1.0)
    # Where 'a' is 90% of the truth (the rule's 95% less its 5% margin), answering it 95% of the time
    # is no sign of a degenerate model: 40 images, 36 'a', the model right on 38.
    truth = np.array([0] * 36 + [1] * 4)
    answers = np.array([0] * 36 + [0, 0, 1, 1])
    assert check_gates(report_of(truth, truth, answers), max_disagreement=1.0, max_accuracy_drop=100.0) == []


def test_chance_rule_allows_exactly_one_image_of_slack():
    # 20 images, 'a' is half of them: always answering 'a' scores 50%; one image more (55%) is still chance,
    # two more (60%) is not. The answers are spread over the classes so the one-class rule stays out of it.
    truth = np.array([0] * 10 + [1] * 5 + [2] * 5)

    def answers(right):
        wrong = (truth + 1) % 3  # every image wrong, every class still answered
        return np.where(np.arange(20) < right, truth, wrong)

    for right, degenerate in ((11, True), (12, False)):
        predicted = answers(right)
        assert (predicted == truth).sum() == right
        if degenerate:
            with pytest.raises(GateFailed, match=r"the candidate's accuracy 55.0% is no better than always answering"):
                check_gates(report_of(truth, truth, predicted), max_disagreement=1.0, max_accuracy_drop=100.0)
        else:
            check_gates(report_of(truth, truth, predicted), max_disagreement=1.0, max_accuracy_drop=100.0)
