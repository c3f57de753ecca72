"""tools/pi_emulation_compare.py: what makes the emulated Pi's answers count as the host's."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from pi_emulation_compare import compare  # noqa: E402

STEP = 1 / 256


def _row(*scores):
    labels = ["red", "green", "blue"]
    ranked = sorted(zip(labels, scores), key=lambda p: -p[1])  # stable: ties keep index order
    return {"path": "/x/images/a.png", "label": ranked[0][0],
            "top_k": [{"label": name, "score": score} for name, score in ranked]}


def _check(host_rows, guest_rows):
    host = {f"{i}.png": row for i, row in enumerate(host_rows)}
    guest = {f"{i}.png": row for i, row in enumerate(guest_rows)}
    return compare(host, guest, STEP)


TIE = _row(1 / 3, 1 / 3, 1 / 3)


def test_identical_answers_with_a_tie_pass():
    problems, stats = _check([_row(0.9, 0.05, 0.05), TIE], [_row(0.9, 0.05, 0.05), TIE])
    assert problems == [] and stats["exact_ties"] == 1 and stats["images"] == 2


def test_one_step_passes_and_two_steps_fail():
    assert _check([_row(0.5, 0.3, 0.2), TIE], [_row(0.5 + STEP, 0.3, 0.2 - STEP), TIE])[0] == []
    problems, _ = _check([_row(0.5, 0.3, 0.2), TIE], [_row(0.5 + 2 * STEP, 0.3, 0.2), TIE])
    assert len(problems) == 1 and "scores differ" in problems[0]


def test_an_exact_tie_broken_differently_fails():
    flipped = dict(TIE, label="blue", top_k=list(reversed(TIE["top_k"])))
    problems, _ = _check([TIE], [flipped])
    assert len(problems) == 1 and "exact tie broken differently" in problems[0]


def test_a_near_tie_flipped_by_one_step_is_reported_not_failed():
    problems, stats = _check([_row(0.45, 0.45 - STEP, 0.1), TIE], [_row(0.45 - STEP, 0.45, 0.1), TIE])
    assert problems == [] and stats["near_tie_label_changes"] == 1


def test_missing_images_and_no_ties_fail():
    problems, _ = _check([_row(0.9, 0.05, 0.05), _row(0.1, 0.8, 0.1)], [_row(0.9, 0.05, 0.05)])
    assert any("missing" in p for p in problems) and any("tie-breaking was not checked" in p for p in problems)
