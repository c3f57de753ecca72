"""Parity gates: the user's limits on a ``ParityReport``, failed with ``GateFailed`` (exit code 3)."""

from __future__ import annotations

import math

from edgecnn.errors import DataError, GateFailed
from edgecnn.parity.report import ParityReport

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
                max_accuracy_drop: float | None = None) -> None:
    """Raise GateFailed (exit code 3) when the report exceeds a limit the user gave.

    ``max_disagreement`` is a fraction of images (0.01 = 1%); ``max_accuracy_drop`` is in
    percentage points of accuracy (0.5 = half a point), reference minus candidate.
    """
    validate_gates(max_disagreement, max_accuracy_drop)
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
    if failures:
        raise GateFailed(f"parity gate failed: {'; '.join(failures)}; the candidate does not match its reference")
