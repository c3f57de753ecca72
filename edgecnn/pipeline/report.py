"""A self-contained HTML report of a run: one file, images embedded, safe to mail.

It reads only the artifacts that the stages left in the run directory (recipe, training
curves, evaluation, parity reports, benchmark table and plot, deploy.json, whose file is the
table's highlighted row), so it can be rebuilt at any time and never re-runs a model. Every piece of text is HTML-escaped: labels and paths come
from the user's folders.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from edgecnn import __version__
from edgecnn.atomic import write_text
from edgecnn.deploy import DEPLOY_FILE
from edgecnn.errors import EdgecnnError
from edgecnn.rundir import RunDir

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.92rem} th,td{border:1px solid #ccc;padding:.25rem .6rem;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
.ok{color:#137333;font-weight:600} .fail{color:#b3261e;font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.5rem 0} pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.85rem}
.muted{color:#666} tr.pick td{background:#e6f4ea;font-weight:600}
"""

BENCHMARK_COLUMNS = (
    ("format", "format"), ("source", "source model"), ("status", "status"), ("accuracy", "accuracy"),
    ("top1_agreement", "top-1 agreement"), ("size_bytes", "size (bytes)"), ("gzip_bytes", "gzip (bytes)"),
    ("latency_ms_p50", "p50 latency (ms)"), ("file", "file"),
)
PARITY_FIGURES = (
    ("num_samples", "images"), ("top1_agreement", "top-1 agreement"), ("top5_agreement", "top-5 agreement"),
    ("max_abs_error", "max |score error|"), ("mean_abs_error", "mean |score error|"),
    ("reference.accuracy", "reference accuracy"), ("candidate.accuracy", "candidate accuracy"),
)


def build_report(run_path) -> Path:
    """Write ``report.html`` into the run and return its path."""
    run = RunDir(run_path)
    sections = [
        _header(run),
        _section("Recipe", _recipe(run)),
        _section("Training", _image(run.curves_png, "training curves")),
        _section("Evaluation (float model, test split)", _evaluation(run)),
        _section("Parity: quantized vs float", _parity(run)),
        _section("Formats side by side", _benchmark(run)),
        _section("File to deploy", _deploy(run)),
        _section("What the model looks at", explain_section(run)),
    ]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>edgecnn report: {_e(run.path.name)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(sections)}</body></html>\n")
    return write_text(run.report_html, page)


def _header(run: RunDir) -> str:
    name = run.path.name
    if run.recipe.is_file():
        try:
            name = run.load_recipe().name or name
        except EdgecnnError:
            pass  # a broken recipe.yaml still gets a report, named after the folder
    return f"<h1>edgecnn report: {_e(name)}</h1><p class='muted'>edgecnn {__version__} · {_e(run.path.resolve())}</p>"


def _section(title: str, body: str) -> str:
    return f"<h2>{_e(title)}</h2>{body}"


def _recipe(run: RunDir) -> str:
    if not run.recipe.is_file():
        return _missing("recipe.yaml")
    # Folded: the resolved recipe is long, and the figures below are what a reader comes for.
    return (f"<details><summary>resolved recipe (recipe.yaml)</summary>"
            f"<pre>{_e(run.recipe.read_text(encoding='utf-8'))}</pre></details>")


def _evaluation(run: RunDir) -> str:
    data = _read_json(run.evaluation)
    if data is None:
        return _missing("evaluation.json (run 'edgecnn evaluate')")
    figures = f"<p>accuracy <b>{_fmt(data.get('accuracy'))}</b> on {_fmt(data.get('num_samples'))} test images</p>"
    return figures + _image(run.confusion_png, "confusion matrix")


def _parity(run: RunDir) -> str:
    reports = sorted(run.path.glob("parity_*.json"))
    if not reports:
        return _missing("parity_*.json (run 'edgecnn parity' or 'edgecnn export')")
    head = "".join(f"<th>{_e(label)}</th>" for _, label in PARITY_FIGURES)
    rows = []
    for path in reports:
        data = _read_json(path) or {}
        cells = "".join(f"<td>{_fmt(_dig(data, key))}</td>" for key, _ in PARITY_FIGURES)
        verdict = data.get("passed")
        mark = "" if verdict is None else (" <span class='ok'>pass</span>" if verdict else " <span class='fail'>FAIL</span>")
        rows.append(f"<tr><td>{_e(path.stem.removeprefix('parity_'))}{mark}</td>{cells}</tr>")
    return f"<table><tr><th>model</th>{head}</tr>{''.join(rows)}</table>"


def _benchmark(run: RunDir) -> str:
    data = _read_json(run.benchmark_json)
    if data is None:
        return _missing("benchmark.json (run 'edgecnn benchmark')")
    head = "".join(f"<th>{_e(label)}</th>" for _, label in BENCHMARK_COLUMNS)
    pick = _recommended(run)
    rows = []
    for row in data.get("rows", []):
        cells = []
        for key, _ in BENCHMARK_COLUMNS:
            value = row.get(key)
            css = " class='ok'" if key == "status" and value == "ok" else (" class='fail'" if key == "status" else "")
            cells.append(f"<td{css}>{_fmt(value)}</td>")
        chosen = pick is not None and (row.get("format"), row.get("file")) == pick
        attribute = " class='pick'" if chosen else ""
        rows.append(f"<tr{attribute}>{''.join(cells)}</tr>")
    table = f"<table><tr>{head}</tr>{''.join(rows)}</table>"
    return table + _image(run.path / "benchmark.png", "accuracy against latency")


def _recommended(run: RunDir) -> tuple[str, str] | None:
    """(format, file) of deploy.json's recommendation, the row the table highlights."""
    chosen = (_read_json(run.path / DEPLOY_FILE) or {}).get("recommended")
    return (chosen.get("format"), chosen.get("file")) if isinstance(chosen, dict) else None


def _deploy(run: RunDir) -> str:
    decision = _read_json(run.path / DEPLOY_FILE)
    if decision is None:
        return _missing(f"{DEPLOY_FILE} (run 'edgecnn benchmark')")
    css = "ok" if decision.get("status") == "recommended" else "fail"
    head = "recommended" if css == "ok" else "nothing recommended"
    notes = "".join(f"<li>{_e(note)}</li>" for note in decision.get("notes", []))
    rejected = "".join(f"<li>{_e(r.get('file'))} ({_e(r.get('format'))}): {_e(', '.join(r.get('reasons', [])))}</li>"
                       for r in decision.get("rejected", []))
    body = f"<p><span class='{css}'>{head}</span>: {_e(decision.get('reason', ''))}</p>"
    if notes:
        body += f"<ul>{notes}</ul>"
    if rejected:
        body += f"<p>fail the deploy gates:</p><ul>{rejected}</ul>"
    return body


def explain_section(run: RunDir) -> str:
    """Filters, Grad-CAM on test images (misclassified first) and float-vs-int8 attention, from RUN/explain."""
    folder = run.path / "explain"
    summary = _read_json(folder / "explain.json")
    if summary is None:
        return _missing("explain/explain.json (the pipeline's explain stage, or 'edgecnn explain RUN --out RUN/explain')")
    wrong = summary.get("misclassified") or 0
    shown = len(summary.get("shown") or [])
    parts = [f"<p>Grad-CAM on layer {_e(summary.get('layer'))} for {_fmt(summary.get('images'))} test images, "
             f"{_fmt(wrong)} misclassified; the grid shows {shown}, misclassified first (their titles give the "
             f"true label).</p>", _image(folder / "gradcam.png", "Grad-CAM heatmaps"),
             "<h3>First convolution's filters</h3>", _image(folder / "filters.png", "first-layer filters")]
    agreement = summary.get("agreement")
    if agreement is None:
        return "".join(parts + [_missing("float-vs-int8 attention agreement (no int8 export to compare)")])
    rows = [("overall", agreement["overall"])] + list(agreement.get("per_class", {}).items())
    cells = "".join(f"<tr><td>{_e(name)}</td><td>{_fmt(s['images'])}</td><td>{_fmt(s['spearman_mean'])}</td>"
                    f"<td>{_fmt(s['spearman_min'])}</td><td>{_fmt(s['top20_iou_mean'])}</td></tr>" for name, s in rows)
    parts += [f"<h3>Float vs int8 attention ({_e(Path(str(agreement.get('candidate'))).name)}, "
              f"{_e(agreement.get('candidate_method'))})</h3>",
              "<table><tr><th>class</th><th>images</th><th>Spearman mean</th><th>Spearman min</th>"
              f"<th>top-20% IoU mean</th></tr>{cells}</table>",
              _image(folder / "attention_moved.png", "images where attention moved most")]
    return "".join(parts)


def _image(path: Path, alt: str) -> str:
    if not path.is_file():
        return _missing(path.name)
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"<img alt='{_e(alt)}' src='data:image/png;base64,{encoded}'>"


def _missing(what: str) -> str:
    return f"<p class='muted'>not available: {_e(what)}</p>"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _dig(data: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return _e(value)


def _e(value) -> str:
    return html.escape(str(value), quote=True)
