"""The parity report: its fields, its terminal form, and the name its files get in a run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgecnn.parity.attention import format_attention

# Disagreeing images listed on the terminal (all of them go into --json and parity_*.json).
SHOWN_DISAGREEMENTS = 10


@dataclasses.dataclass
class ParityReport:
    num_samples: int
    num_classes: int
    top1_agreement: float
    top5_agreement: float | None
    max_abs_error: float
    mean_abs_error: float
    reference: dict  # path, kind, description, input, preprocessing, accuracy
    candidate: dict
    accuracy_drop_pp: float | None  # reference accuracy minus candidate accuracy, percentage points
    per_class: list[dict]
    disagreements: list[dict]
    data: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)
    intervals: dict = dataclasses.field(default_factory=dict)  # name -> Wilson 95% (low, high)
    predicted_share: dict = dataclasses.field(default_factory=dict)  # reference/candidate/truth -> label, share
    attention: dict | None = None  # parity --attention: parity.attention.attention_agreement's summary

    @property
    def disagreement(self) -> float:
        return 1.0 - self.top1_agreement

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def report_name(candidate_path) -> str:
    """The name parity files of a candidate get in a run: model_int8.tflite -> 'int8' (parity_int8.json)."""
    stem = Path(candidate_path).stem
    return stem[len("model_"):] if stem.startswith("model_") and len(stem) > len("model_") else stem


def format_report(report: ParityReport) -> str:
    """The report as a few aligned lines for the terminal."""
    ref, cand = report.reference, report.candidate
    lines = [
        f"reference  {ref['path']}  [{ref['description']}, {ref['input']}]",
        f"candidate  {cand['path']}  [{cand['description']}, {cand['input']}]",
        f"data       {report.data}: {report.num_samples} images, {report.num_classes} classes",
    ]
    lines += [f"note       {note}" for note in report.notes]
    rows = [("top-1 agreement", f"{report.top1_agreement:.2%}  ({len(report.disagreements)} disagree)"
                                f"{_interval(report, 'top1_agreement')}")]
    if report.top5_agreement is not None:
        rows.append(("top-5 agreement", f"{report.top5_agreement:.2%}"))
    rows += [("max abs error", f"{report.max_abs_error:.4f}"), ("mean abs error", f"{report.mean_abs_error:.5f}")]
    if report.accuracy_drop_pp is not None:
        rows += [("reference accuracy", f"{ref['accuracy']:.2%}{_interval(report, 'reference_accuracy')}"),
                 ("candidate accuracy", f"{cand['accuracy']:.2%}{_interval(report, 'candidate_accuracy')}"),
                 ("accuracy drop", f"{report.accuracy_drop_pp:+.2f} pp")]
    width = max(len(name) for name, _ in rows)
    lines += [""] + [f"  {name:<{width}}  {value}" for name, value in rows]
    changed = [c for c in report.per_class if c["delta_pp"] != 0]
    if changed:
        lines += ["", "  per-class accuracy that changed (reference -> candidate):"]
        for c in sorted(changed, key=lambda c: c["delta_pp"])[:SHOWN_DISAGREEMENTS]:
            lines.append(f"    {c['label']:<16} {c['reference_accuracy']:7.2%} -> {c['candidate_accuracy']:7.2%}"
                         f"  ({c['delta_pp']:+.2f} pp, {c['support']} images)")
    if report.disagreements:
        lines += ["", "  disagreements (reference -> candidate):"]
        for d in report.disagreements[:SHOWN_DISAGREEMENTS]:
            truth = f"  [true {d['label']}]" if d["label"] is not None else ""
            lines.append(f"    {d['path']}: {d['reference']} ({d['reference_score']:.2f}) -> "
                         f"{d['candidate']} ({d['candidate_score']:.2f}){truth}")
        more = len(report.disagreements) - SHOWN_DISAGREEMENTS
        if more > 0:
            lines.append(f"    ... and {more} more")
    if report.attention is not None:
        lines += [""] + ["  " + line for line in format_attention(report.attention)]
    return "\n".join(lines)


def _interval(report: ParityReport, name: str) -> str:
    if name not in report.intervals:
        return ""
    low, high = report.intervals[name]
    return f"  [95% CI {low:.1%} to {high:.1%}]"
