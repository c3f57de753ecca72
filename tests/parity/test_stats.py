"""parity.stats computes with numpy what parity used to ask scikit-learn for: the same numbers, bit for bit.

scikit-learn is a test dependency here (the train extra); parity itself must not import it.
"""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, recall_score, top_k_accuracy_score

from edgecnn.errors import ModelError
from edgecnn.parity.stats import compare_scores, per_class_accuracy, top_k_agreement, wilson_interval


@pytest.mark.parametrize("seed", range(5))
def test_figures_equal_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n, classes = 200, 12
    # Coarse scores: many ties, where the order of equal scores decides top-5 membership.
    ref = rng.integers(0, 4, (n, classes)).astype(np.float32) / 4
    cand = rng.integers(0, 4, (n, classes)).astype(np.float32) / 4
    y_true = rng.integers(0, classes - 2, n)  # two classes absent: per-class covers the present ones only
    ref_pred, cand_pred = ref.argmax(1), cand.argmax(1)

    assert top_k_agreement(ref_pred, cand, 5) == top_k_accuracy_score(ref_pred, cand, k=5, labels=np.arange(classes))
    present = np.unique(y_true)
    expected = recall_score(y_true, cand_pred, labels=present, average=None, zero_division=0)
    assert per_class_accuracy(y_true, cand_pred, present).tolist() == expected.tolist()

    report = compare_scores(ref, cand, labels=[f"c{i}" for i in range(classes)], y_true=y_true)
    assert report.top5_agreement == top_k_accuracy_score(ref_pred, cand, k=5, labels=np.arange(classes))
    assert report.reference["accuracy"] == accuracy_score(y_true, ref_pred)
    assert report.candidate["accuracy"] == accuracy_score(y_true, cand_pred)
    assert [c["label"] for c in report.per_class] == [f"c{i}" for i in present]
    assert [c["candidate_accuracy"] for c in report.per_class] == expected.tolist()


def test_top5_ties_rank_the_higher_class_first():
    # All six scores equal: scikit-learn's (stable sort, reversed) order puts classes 5..1 in the top 5, not 0.
    scores = np.ones((2, 6), np.float32)
    assert top_k_agreement(np.array([0, 5]), scores, 5) == 0.5


# --- edges the mutation score (tools/mutation_score.sh) found untested ---------------------------


@pytest.mark.parametrize("ref_shape, cand_shape", [((2, 3), (2, 4)), ((3, 3), (2, 3)), ((3,), (3,)), ((0, 3), (0, 3))])
def test_scores_that_cannot_be_compared_are_refused_with_their_shapes(ref_shape, cand_shape):
    with pytest.raises(ModelError, match=rf"cannot compare scores of shapes \({ref_shape[0]},.*and \({cand_shape[0]},"):
        compare_scores(np.zeros(ref_shape), np.zeros(cand_shape), labels=list("abcd"))


def test_a_single_image_is_a_valid_comparison():
    report = compare_scores(np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]]), labels=["a", "b"], y_true=np.array([1]))
    assert report.num_samples == 1 and report.top1_agreement == 0.0
    assert report.reference["accuracy"] == 1.0 and report.candidate["accuracy"] == 0.0


@pytest.mark.parametrize("classes", [5, 6])
def test_top5_is_reported_only_when_it_can_miss(classes):
    # With 5 classes every class is in the top 5, so the figure would always be 1: left out.
    rng = np.random.default_rng(classes)
    ref, cand = rng.random((40, classes)), rng.random((40, classes))
    report = compare_scores(ref, cand, labels=[str(i) for i in range(classes)])
    if classes == 5:
        assert report.top5_agreement is None
    else:
        assert report.top5_agreement == top_k_agreement(ref.argmax(1), cand.astype(np.float32), 5) < 1.0


def test_scores_are_compared_at_float32_whatever_the_caller_passes():
    # A float64 Keras-side matrix and the float32 copy of the same values are the same model outputs.
    exact = np.random.default_rng(4).random((20, 4))
    rounded = exact.astype(np.float32)
    for ref, cand in ((exact, rounded), (rounded, exact)):
        report = compare_scores(ref, cand, labels=list("abcd"))
        assert report.max_abs_error == 0.0 and report.mean_abs_error == 0.0


def test_unlabelled_scores_give_no_per_class_figures_and_index_named_disagreements():
    ref = np.eye(3)[[0, 1, 2, 0]]
    cand = np.eye(3)[[0, 2, 2, 1]]
    report = compare_scores(ref, cand, labels=list("abc"))
    assert report.per_class == [] and report.accuracy_drop_pp is None
    assert [(d["path"], d["label"], d["reference"], d["candidate"]) for d in report.disagreements] == \
        [("1", None, "b", "c"), ("3", None, "a", "b")]
    assert "truth" not in report.predicted_share


def test_intervals_are_the_wilson_intervals_of_the_counts():
    rng = np.random.default_rng(5)
    ref, cand = rng.random((50, 4)), rng.random((50, 4))
    y_true = rng.integers(0, 4, 50)
    report = compare_scores(ref, cand, labels=list("abcd"), y_true=y_true)
    agree = int((ref.argmax(1) == cand.argmax(1)).sum())
    assert report.intervals == {
        "top1_agreement": wilson_interval(agree, 50),
        "reference_accuracy": wilson_interval(int((ref.argmax(1) == y_true).sum()), 50),
        "candidate_accuracy": wilson_interval(int((cand.argmax(1) == y_true).sum()), 50),
    }


def test_wilson_interval_stays_inside_zero_and_one():
    # At 0 of n and n of n the float arithmetic overshoots the bounds for many n (913 of n < 5000 at the top)
    for n in range(1, 300):
        low, high = wilson_interval(n, n)
        assert high <= 1.0 and 0.0 <= low
        low, high = wilson_interval(0, n)
        assert low >= 0.0 and high <= 1.0
