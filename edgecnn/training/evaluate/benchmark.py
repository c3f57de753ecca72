"""Every format of a run side by side: accuracy, agreement with the float model, size, latency.

``benchmark_run`` takes a run directory and a list of formats (``FORMATS``). For each it finds
the file in the run, exports it through ``export`` when its source model is there, evaluates it
on the run's test split through ``parity`` (accuracy and top-1 agreement with the Keras float
model, on the same preprocessing the device uses), measures the file and its gzip size, and its
p50 latency with the device half's profiler at the chosen threads. A format that cannot be made
or fails gets a row whose status says why; the table is never lost to one bad format.

The formats (``edgecnn/formats.py``) are named for their source model and mode (``pruned-fp16``), like
their files (model_pruned_fp16.tflite); each row's ``source`` is the file's lineage from its
metadata (``pruned+qat``). The run receives benchmark.json (``{"rows": [...], "reference": ...}``),
benchmark.csv and benchmark.png (accuracy against latency), all written atomically.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import gzip
import io
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from edgecnn.atomic import atomic_path, write_json, write_text
from edgecnn.errors import EdgecnnError, RecipeError, RunDirError, closest
from edgecnn.formats import FORMATS, LINEAGE, Format, parse_formats  # noqa: F401  (names for callers)
from edgecnn.parity.core import run_parity
from edgecnn.parity.data import load_parity_data
from edgecnn.parity.predictors import TFLitePredictor
from edgecnn.recipe import default_value
from edgecnn.rundir import RunDir
from edgecnn.runtime.interpreter import DELEGATES, runtime_info
from edgecnn.runtime.profile.profiler import ProfileSettings, latency_summary, profile_model, time_invokes
from edgecnn.runtime.profile.sysinfo import system_info
from edgecnn.tflite.metadata import read_metadata
from edgecnn.training.evaluate.keras_predictor import load_predictor
from edgecnn.training.export.exporter import ExportOptions, export, planned_path
from edgecnn.training.models.model_io import load_keras_model

COLUMNS = ("format", "status", "accuracy", "top1_agreement", "size_bytes", "gzip_bytes", "latency_ms_p50",
           "file", "source", "note")
KERAS_LATENCY_RUNS = 30  # Keras' per-call overhead is milliseconds; a few dozen calls settle its median


SOURCES = {
    "float": (lambda run: run.float_model, "edgecnn train DATA --out {run}"),
    "qat": (lambda run: run.qat_model, "edgecnn qat {run}"),
    "pruned": (lambda run: run.pruned_model, "edgecnn prune {run}"),
}


@dataclasses.dataclass(frozen=True)
class BenchmarkSettings:
    threads: int = default_value("benchmark.threads")
    runs: int = 100
    warmup: int = 10
    export_missing: bool = True
    # Each TFLite format gets one row per delegate ("fp32" on the CPU, "fp32@gpu" on the GPU ...).
    delegates: tuple[str, ...] = ("cpu",)

    def __post_init__(self):
        for delegate in self.delegates:
            if delegate not in DELEGATES:
                raise RecipeError(f"unknown delegate {delegate!r}{closest(delegate, DELEGATES)} in --delegates; "
                                  f"use a comma-separated subset of {', '.join(DELEGATES)}")
        if not self.delegates:
            raise RecipeError("--delegates is empty; e.g. --delegates cpu,gpu")
        if not isinstance(self.threads, int) or self.threads < 1:
            raise RecipeError(f"--threads must be a whole number >= 1, got {self.threads!r}")
        if not isinstance(self.runs, int) or self.runs < 1:
            raise RecipeError(f"--runs must be a whole number >= 1, got {self.runs!r}")


# --- one row ----------------------------------------------------------------------------------

def empty_row(fmt: Format, delegate: str = "cpu") -> dict:
    name = fmt.name if delegate == "cpu" else f"{fmt.name}@{delegate}"
    return {"format": name, "delegate": delegate, "status": "", "accuracy": None, "top1_agreement": None, "size_bytes": None,
            "gzip_bytes": None, "latency_ms_p50": None, "latency_ms": None, "file": None, "source": fmt.source,
            "description": fmt.description, "note": ""}


def source_model(run: RunDir, fmt: Format) -> Path | None:
    path = SOURCES[fmt.source][0](run)
    return path if path.exists() else None


def missing_source_message(run: RunDir, fmt: Format) -> str:
    path_of, command = SOURCES[fmt.source]
    return f"needs {path_of(run).name}; run '{command.format(run=run.path)}' first"


def model_file(run: RunDir, fmt: Format, settings: BenchmarkSettings) -> tuple[Path | None, str]:
    """(the file that holds this format, a note) or (None, why not)."""
    if fmt.quantize is None:
        path = source_model(run, fmt)
        return (path, "") if path else (None, missing_source_message(run, fmt))
    existing = find_export(run, fmt)
    if existing is not None:
        return existing, "existing file"
    if source_model(run, fmt) is None:
        return None, missing_source_message(run, fmt)
    out = export_target(run, fmt)
    if not settings.export_missing:
        return None, f"not exported yet; run without --no-export, or '{export_command(run, fmt, out)}'"
    return export_format(run, fmt, out), "exported now"


def find_export(run: RunDir, fmt: Format) -> Path | None:
    """A .tflite in the run whose edgecnn metadata says it is ``fmt`` (mode, provenance, CPU target)."""
    usual = f"model_{fmt.source}_"  # today's name first; then any other (an older run's model_int8.tflite)
    for path in sorted(run.path.glob("*.tflite"), key=lambda p: (not p.name.startswith(usual), p.name)):
        try:
            md = read_metadata(path)
        except EdgecnnError:
            continue  # a corrupt or foreign file is not one of our formats
        if (md is not None and md.quantization == fmt.quantize and md.quantization_source in fmt.provenance
                and md.target == "cpu"):
            return path
    return None


def export_target(run: RunDir, fmt: Format) -> Path:
    """The name export gives this format in the run: model_<source>_<mode>.tflite (export_plan.export_file_name)."""
    return planned_path(run.path, _export_options(fmt))


def _export_options(fmt: Format, out: Path | None = None) -> ExportOptions:
    return ExportOptions(quantize=fmt.quantize, start=fmt.source, out=out, target="cpu")


def export_command(run: RunDir, fmt: Format, out: Path) -> str:
    return f"edgecnn export {run.path} --quantize {fmt.quantize} --from {fmt.source} --out {out}"


def export_format(run: RunDir, fmt: Format, out: Path) -> Path:
    """Export ``fmt`` from its source model in the run through the export module (progress on stderr)."""
    if out.exists():
        raise RunDirError(f"{out} already holds another model; move it away or export {fmt.name} yourself "
                          f"with '{export_command(run, fmt, out)}'")
    result = export(run.path, _export_options(fmt, out))
    return result.path


def file_sizes(path: Path) -> tuple[int, int]:
    """(bytes, gzip -9 bytes): gzip shows what pruning's zeros save on the wire."""
    data = path.read_bytes()
    return len(data), len(gzip.compress(data, compresslevel=9, mtime=0))


def measure_latency(path: Path, fmt: Format, settings: BenchmarkSettings, delegate: str = "cpu") -> dict:
    if fmt.quantize is None:
        return keras_latency(path, settings)
    report = profile_model(path, ProfileSettings(threads=(settings.threads,), runs=settings.runs,
                                                 warmup=settings.warmup, delegate=delegate))
    return report["latency_ms"]


def keras_latency(path: Path, settings: BenchmarkSettings) -> dict:
    """Keras' predict_on_batch on one image, timed like the profiler (TensorFlow picks its own threads)."""
    model = load_keras_model(path)
    x = np.zeros((1, *model.input_shape[1:]), np.float32)
    for _ in range(min(settings.warmup, 5) + 1):
        model.predict_on_batch(x)
    return latency_summary(time_invokes(lambda: model.predict_on_batch(x), min(settings.runs, KERAS_LATENCY_RUNS)))


class Evaluator:
    """Accuracy and top-1 agreement of any model file against the run's Keras float model, via parity."""

    def __init__(self, run: RunDir, threads: int):
        self.run, self.threads = run, threads
        self.data = load_parity_data(run.path, split="test")
        self.reference = load_predictor(run.require(run.float_model, f"edgecnn train DATA --out {run.path}"))
        self.reference_accuracy: float | None = None  # the float model's, on the same images

    def evaluate(self, path: Path, delegate: str = "cpu") -> tuple[float | None, float]:
        if path == self.reference.path:
            candidate = self.reference
        elif delegate != "cpu":
            candidate = TFLitePredictor(path, threads=self.threads, delegate=delegate)
        else:
            candidate = load_predictor(path, threads=self.threads)
        report = run_parity(self.reference, candidate, self.data)
        self.reference_accuracy = report.reference.get("accuracy")
        return report.candidate.get("accuracy"), report.top1_agreement


def benchmark_format(run: RunDir, fmt: Format, settings: BenchmarkSettings, evaluator: Evaluator | None,
                     delegate: str = "cpu") -> dict:
    """One row. Never raises for a problem of this format alone: the status carries it."""
    row = empty_row(fmt, delegate)
    try:
        path, note = model_file(run, fmt, settings)
        row["note"] = note
        if path is None:
            row["status"] = "missing"
            return row
        row["file"] = path.name
        row["source"] = file_lineage(path, fmt)
        row["size_bytes"], row["gzip_bytes"] = file_sizes(path)
        if evaluator is not None:
            row["accuracy"], row["top1_agreement"] = evaluator.evaluate(path, delegate)
        row["latency_ms"] = measure_latency(path, fmt, settings, delegate)
        row["latency_ms_p50"] = row["latency_ms"]["p50"]
        row["status"] = "ok"
    except EdgecnnError as exc:
        row["status"], row["note"] = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - converter/TF errors of one format must not kill the table;
        # the row keeps the exception's type and first line, and the CLI prints it, so nothing is hidden.
        row["status"], row["note"] = "failed", f"{type(exc).__name__}: {_first_line(exc)}"
    return row


def file_lineage(path: Path, fmt: Format) -> str:
    """The model a file was made from, as its metadata says (qat-int8 of a pruned run: pruned+qat)."""
    if fmt.quantize is None:
        return fmt.source
    md = read_metadata(path)
    return LINEAGE.get(md.quantization_source, fmt.source) if md is not None else fmt.source


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


# --- the whole table --------------------------------------------------------------------------

def benchmark_run(run_path, formats: list[Format], settings: BenchmarkSettings,
                  progress: Callable[[str], None] | None = None) -> dict:
    run = RunDir(run_path).require_run()
    say = progress or (lambda message: None)
    evaluator = None
    if run.float_model.exists():
        evaluator = Evaluator(run, settings.threads)
        say(f"evaluating on {len(evaluator.data.paths)} test images of {run.path}")
    else:
        say(f"{run.path} has no float.keras: accuracy and agreement cannot be measured, only size and latency")
    rows = []
    jobs = [(fmt, d) for fmt in formats for d in settings.delegates if d == "cpu" or fmt.quantize is not None]
    for index, (fmt, delegate) in enumerate(jobs, 1):
        name = empty_row(fmt, delegate)["format"]
        say(f"[{index}/{len(jobs)}] {name}: {fmt.description} ...")
        row = benchmark_format(run, fmt, settings, evaluator, delegate)
        say(f"[{index}/{len(jobs)}] {name}: {row['status']}" + _row_summary(row))
        rows.append(row)
    if not any(row["status"] == "ok" for row in rows):
        reasons = "; ".join(f"{row['format']}: {row['note']}" for row in rows)
        raise RunDirError(f"no format of {run.path} could be benchmarked ({reasons})")
    return {
        "run": str(run.path),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "threads": settings.threads, "runs": settings.runs, "warmup": settings.warmup,
        "test_images": len(evaluator.data.paths) if evaluator else 0,
        # What each row's accuracy drop is measured from (the deploy gates): the float model on the same images.
        "reference": {"file": run.float_model.name,
                      "accuracy": evaluator.reference_accuracy if evaluator else None},
        "environment": _environment(),
        "rows": rows,
    }


def _row_summary(row: dict) -> str:
    if row["status"] != "ok":
        return f" ({row['note']})"
    parts = []
    if row["accuracy"] is not None:
        parts.append(f"accuracy {row['accuracy']:.2%}")
    parts.append(f"{row['size_bytes']:,} bytes")
    parts.append(f"p50 {row['latency_ms_p50']:.4g} ms")
    return " (" + ", ".join(parts) + ")"


def _environment() -> dict:
    info = system_info()
    runtime = runtime_info()
    return info | {"runtime": runtime["runtime"], "runtime_version": runtime["runtime_version"]}


# --- artifacts --------------------------------------------------------------------------------

def write_artifacts(run_path, result: dict) -> dict[str, Path]:
    run = RunDir(run_path)
    paths = {"json": run.benchmark_json, "csv": run.path / "benchmark.csv", "png": run.path / "benchmark.png"}
    write_json(paths["json"], result)
    write_text(paths["csv"], to_csv(result["rows"]))
    write_plot(paths["png"], result)
    return paths


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    return buffer.getvalue()


def write_plot(path: Path, result: dict) -> Path:
    """Accuracy (%) against p50 latency (ms), one labelled point per format that has both."""
    import matplotlib

    matplotlib.use("Agg")  # no display on a server or in CI
    import matplotlib.pyplot as plt

    points = [r for r in result["rows"] if r["status"] == "ok" and r["accuracy"] is not None
              and r["latency_ms_p50"] is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    try:
        # Formats often land on top of each other (same accuracy, similar latency): stagger the labels.
        offsets = [(6, 6), (6, -14), (6, 18), (6, -26)]
        for i, row in enumerate(sorted(points, key=lambda r: r["latency_ms_p50"])):
            marker = "s" if row["format"] == "keras" else "o"
            xy = (row["latency_ms_p50"], 100 * row["accuracy"])
            ax.scatter(*xy, marker=marker, s=40)
            ax.annotate(row["format"], xy, textcoords="offset points", xytext=offsets[i % len(offsets)], fontsize=9,
                        arrowprops={"arrowstyle": "-", "alpha": 0.4, "lw": 0.6})
        if points:
            accuracies = [100 * r["accuracy"] for r in points]
            middle = (max(accuracies) + min(accuracies)) / 2
            half = max(1.0, (max(accuracies) - min(accuracies)) * 0.7)  # at least +-1 point, so noise looks small
            ax.set_ylim(middle - half, middle + half)
        if not points:
            ax.text(0.5, 0.5, "no format has both accuracy and latency", ha="center", transform=ax.transAxes)
        elif any(r["format"] == "keras" for r in points):
            ax.set_xscale("log")  # Keras is often 100x slower than the .tflite files
        ax.set_xlabel(f"p50 latency (ms, {result['threads']} threads)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{Path(result['run']).name}: accuracy against latency", fontsize=10)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return path


def progress_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
