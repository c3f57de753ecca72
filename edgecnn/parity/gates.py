"""Parity gates: the user's limits on a ``ParityReport``, failed with ``GateFailed`` (exit code 3).

Two rules beyond the user's thresholds (docs/parity.md, "Gates on small test splits"):
- A (near-)constant classifier fails every gate, whatever the thresholds: it agrees perfectly
  with a copy of itself, so agreement and accuracy drop alone would pass it.
- A gate finer than one image of the split cannot be decided by it: with 27 images one flip is
  3.7 pp, so "--max-accuracy-drop 1" can only mean "no flip at all", and even no flip does not show
  that the true drop is below 1 pp. The gate is still applied as given (it fails closed on any
  flip); edgecnn says so, with the number of images that would decide it, in the failure message
  or as a warning returned to the caller when it passes.
"""

from __future__ import annotations

import math

from edgecnn.errors import DataError, GateFailed
from edgecnn.parity.report import ParityReport

# The "one class" rule of training's degenerate check (which imports these): 95% of answers in one
# class that is not that common among the true labels; "chance": no better than always answering
# the most common true class, with one image of slack.
ONE_CLASS_SHARE = 0.95
TRUE_SHARE_MARGIN = 0.05

# Gates compare with this slack so that float rounding (1 - 0.98 = 0.0200000000000000018) does not fail
# a result that is exactly at the limit; it is far below one image in any real data set.
_ROUNDING = 1e-9


def validate_gates(max_disagreement: float | None = None, max_accuracy_drop: float | None = None) -> None:
    """Check the gate values themselves (before any work is done).

    NaN compares false with everything, so a NaN gate would silently pass every report: refused, as are
    infinities (an infinite gate is no gate; leave the option out instead).
    """
    if max_disagreement is not None and not (_finite(max_disagreement) and 0 <= max_disagreement <= 1):
        raise DataError(f"--max-disagreement is a fraction between 0 and 1 (0.01 = 1%), got {max_disagreement}")
    if max_accuracy_drop is not None and not (_finite(max_accuracy_drop) and max_accuracy_drop >= 0):
        raise DataError(f"--max-accuracy-drop is in percentage points and must be >= 0 and finite, "
                        f"got {max_accuracy_drop}")


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_gates(report: ParityReport, max_disagreement: float | None = None,
                max_accuracy_drop: float | None = None) -> list[str]:
    """Raise GateFailed (exit code 3) when the report exceeds a limit the user gave, or a model is degenerate.

    ``max_disagreement`` is a fraction of images (0.01 = 1%); ``max_accuracy_drop`` is in
    percentage points of accuracy (0.5 = half a point), reference minus candidate.
    Returns warnings for a gate that passed but that this split is too small to decide.
    """
    validate_gates(max_disagreement, max_accuracy_drop)
    if max_disagreement is None and max_accuracy_drop is None:
        return []
    undecidable = resolution_warnings(report.num_samples, max_disagreement, max_accuracy_drop)
    failures = []
    if max_disagreement is not None and report.disagreement > max_disagreement + _ROUNDING:
        disagreeing = len(report.disagreements)
        failures.append(f"disagreement {report.disagreement:.2%} ({disagreeing} of {report.num_samples} images) "
                        f"exceeds --max-disagreement {max_disagreement:.2%}")
    if max_accuracy_drop is not None:
        if report.accuracy_drop_pp is None:
            raise DataError("--max-accuracy-drop needs labelled images (one subfolder per class, or a run directory)")
        if report.accuracy_drop_pp > max_accuracy_drop + _ROUNDING:
            failures.append(f"accuracy drop {report.accuracy_drop_pp:.2f} pp "
                            f"({report.reference['accuracy']:.2%} -> {report.candidate['accuracy']:.2%}) "
                            f"exceeds --max-accuracy-drop {max_accuracy_drop:g} pp")
    failures += degenerate_models(report)
    if failures:
        raise GateFailed(f"parity gate failed: {'; '.join(failures + undecidable)}; "
                         "the candidate does not match its reference")
    return undecidable


def resolution_warnings(n: int, max_disagreement: float | None, max_accuracy_drop: float | None) -> list[str]:
    """For each gate finer than one image of an ``n``-image split: what it can and cannot tell."""
    warnings = []
    for option, limit, step, unit in (("--max-disagreement", max_disagreement, 1 / n, None),
                                      ("--max-accuracy-drop", max_accuracy_drop, 100 / n, "pp")):
        if limit is None or not 0 < limit < step - _ROUNDING:
            continue
        needed = math.ceil((100 if unit else 1) / limit - _ROUNDING)
        shown = f"{limit:g} pp" if unit else f"{limit:.2%}"
        one = f"{step:.2f} pp" if unit else f"{step:.2%}"
        warnings.append(f"{option} {shown} is finer than one image of this {n}-image split ({one}), so the "
                        f"split cannot decide it: any flipped image fails it and no flip does not prove it; "
                        f"about {needed} images would")
    return warnings


def degenerate_models(report: ParityReport) -> list[str]:
    """Why the reference or the candidate is a (near-)constant or chance-level classifier; empty if neither."""
    truth = report.predicted_share.get("truth")
    if truth is None:
        return []  # without labels a one-class answer may be the data's truth (one camera, one scene)
    found = []
    for role in ("reference", "candidate"):
        answered = report.predicted_share[role]
        accuracy = getattr(report, role)["accuracy"]
        support = next((c["support"] for c in report.per_class if c["label"] == answered["label"]), 0)
        if answered["share"] >= ONE_CLASS_SHARE and support / report.num_samples < ONE_CLASS_SHARE - TRUE_SHARE_MARGIN:
            found.append(f"the {role} answers {answered['label']!r} for {answered['share']:.0%} of the images "
                         f"(a degenerate model)")
        elif accuracy <= truth["share"] + 1 / report.num_samples + _ROUNDING:
            found.append(f"the {role}'s accuracy {accuracy:.1%} is no better than always answering "
                         f"{truth['label']!r} ({truth['share']:.1%}): a degenerate model")
    return found
