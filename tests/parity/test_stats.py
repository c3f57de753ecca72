"""parity.stats computes with numpy what parity used to ask scikit-learn for: the same numbers, bit for bit.

scikit-learn is a test dependency here (the train extra); parity itself must not import it.
"""

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, recall_score, top_k_accuracy_score

from edgecnn.parity.stats import compare_scores, per_class_accuracy, top_k_agreement


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
