"""Reading profile reports back and putting several side by side (``edgecnn compare``).

A report is the JSON that ``edgecnn profile --json``/``--out`` writes (schema
``edgecnn.profile/1``, see docs/profiling.md). Reports from different devices are compared
row by row; reports that measured different models are still tabulated, with a warning,
because comparing an int8 file on a Pi with the float file on a laptop is sometimes the point.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgecnn.errors import EdgecnnError

COMPARE_COLUMNS = (
    ("report", "report"), ("device", "device"), ("model", "model"), ("threads", "threads"),
    ("delegate", "delegate"), ("p50", "p50 ms"), ("p90", "p90 ms"), ("p99", "p99 ms"), ("mean", "mean ms"),
    ("init_ms", "init ms"), ("first_invoke_ms", "1st ms"), ("peak_rss_mb", "RSS MB"),
    ("speed_vs_first", "x first"), ("throttled", "throttled"),
)


class ReportError(EdgecnnError):
    """A file given to ``compare`` that is not a profile report."""


def load_report(path) -> dict:
    """A profile report from ``path``, checked just enough to be tabulated."""
    path = Path(path)
    if not path.is_file():
        raise ReportError(f"report {path} does not exist; write one with 'edgecnn profile MODEL --out {path.name}'")
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ReportError(f"{path} is not valid JSON; give a report written by 'edgecnn profile --json'") from None
    if not isinstance(report, dict):
        raise ReportError(f"{path} is not a profile report (a JSON object); give one written by 'edgecnn profile --json'")
    rows = report.get("rows") or ([report] if "latency_ms" in report else [])
    if not rows or not all(isinstance(r, dict) and isinstance(r.get("latency_ms"), dict)
                           and "p50" in r["latency_ms"] for r in rows):
        raise ReportError(f"{path} has no latency_ms.p50, so it is not a profile report; "
                          "give one written by 'edgecnn profile --json'")
    return report


def model_key(report: dict) -> tuple[str, str]:
    """(id, display name) of the model a report measured."""
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    ident = model.get("id") or model.get("sha256") or model.get("name") or "?"
    name = str(model.get("name") or model.get("file") or "?")
    # An architecture's name is shared by all its exports: the quantization tells them apart.
    quantization = {"none": "fp32"}.get(model.get("quantization"), model.get("quantization"))
    return str(ident), f"{name} ({quantization})" if quantization else name


def compare_reports(named_reports: list[tuple[str, dict]]) -> tuple[list[dict], list[str]]:
    """Table rows (one per report row) and warnings for a list of (label, report)."""
    warnings = []
    models = {}
    for label, report in named_reports:
        models.setdefault(model_key(report)[0], []).append((label, model_key(report)[1]))
    if len(models) > 1:
        groups = "; ".join(", ".join(f"{label} ({name})" for label, name in members) for members in models.values())
        warnings.append(f"these reports measured {len(models)} different models (by content hash): {groups}; "
                        "latencies are comparable only for the same model")

    rows = []
    first_best = None
    for label, report in named_reports:
        report_rows = report.get("rows") or [report]
        best = min(r["latency_ms"]["p50"] for r in report_rows)
        first_best = best if first_best is None else first_best
        for row in report_rows:
            latency = row["latency_ms"]
            rows.append({
                "report": label,
                "device": report.get("device", "?"),
                "model": model_key(report)[1],
                "threads": row.get("threads"),
                "delegate": row.get("delegate", report.get("delegate")),
                "p50": latency.get("p50"), "p90": latency.get("p90"), "p99": latency.get("p99"),
                "mean": latency.get("mean"),
                "init_ms": row.get("init_ms"), "first_invoke_ms": row.get("first_invoke_ms"),
                "peak_rss_mb": row.get("peak_rss_mb"),
                # How many times faster than the first report's best row (>1: faster).
                "speed_vs_first": round(first_best / latency["p50"], 2) if latency.get("p50") else None,
                "throttled": bool(row.get("throttled")),
            })
        if report.get("throttled"):
            warnings.append(f"{label} was throttled during the run (see its throttle_reasons); its latencies are pessimistic")
    return rows, warnings


def format_table(columns, rows: list[dict]) -> str:
    """A plain-text table: ``columns`` is a sequence of (key, header); numbers right-aligned.

    Floats in one column share their number of decimals (enough for three significant digits
    of the column's smallest value), so the column lines up.
    """
    decimals = {key: column_decimals([row.get(key) for row in rows]) for key, _ in columns}
    cells = [[header for _, header in columns]]
    for row in rows:
        cells.append([format_cell(row.get(key), decimals[key]) for key, _ in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    numeric = [all(_is_number(row.get(key)) for row in rows if row.get(key) is not None) for key, _ in columns]
    lines = []
    for index, line in enumerate(cells):
        parts = [cell.rjust(width) if numeric[i] and index else cell.ljust(width)
                 for i, (cell, width) in enumerate(zip(line, widths))]
        lines.append("  ".join(parts).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def column_decimals(values) -> int:
    magnitudes = [abs(v) for v in values if isinstance(v, float) and v != 0 and math.isfinite(v)]
    if not magnitudes:
        return 2
    return max(0, min(4, 2 - math.floor(math.log10(min(magnitudes)))))


def format_cell(value, decimals: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 10000 else f"{value:.{decimals}f}"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
