"""`edgecnn benchmark` on the shared tiny run: exports, accuracy/agreement, sizes, latency, artifacts."""

import csv
import json
import shutil

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import RecipeError
from edgecnn.tflite.metadata import read_metadata
from edgecnn.training.evaluate import benchmark as bm

FAST = ["--runs", "5", "--warmup", "1", "--threads", "1"]


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the shared tiny run (benchmark writes into the run)."""
    return shutil.copytree(tiny_run.path, tmp_path / "run")


@pytest.fixture(scope="module")
def benchmarked(tiny_run, tmp_path_factory):
    """One real benchmark of keras, fp32, int8 and int8-qat (which the tiny run lacks)."""
    run = shutil.copytree(tiny_run.path, tmp_path_factory.mktemp("bench") / "run")
    result = CliRunner().invoke(cli, ["benchmark", str(run), "--formats", "keras,fp32,int8,int8-qat", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    return run, json.loads(result.stdout), result.stderr


def test_rows_carry_accuracy_agreement_size_and_latency(benchmarked):
    _, report, _ = benchmarked
    rows = {row["format"]: row for row in report["rows"]}
    assert list(rows) == ["keras", "fp32", "int8", "int8-qat"]
    for name in ("keras", "fp32", "int8"):
        row = rows[name]
        assert row["status"] == "ok", row
        assert 0.5 < row["accuracy"] <= 1.0 and row["latency_ms_p50"] > 0
        assert 0 < row["gzip_bytes"] < row["size_bytes"]
    assert rows["keras"]["top1_agreement"] == 1.0
    # float32 TFLite computes what Keras computes; int8 nearly so.
    assert rows["fp32"]["top1_agreement"] >= 0.99
    assert rows["fp32"]["accuracy"] == pytest.approx(rows["keras"]["accuracy"], abs=0.01)
    assert rows["int8"]["top1_agreement"] >= 0.9
    assert rows["int8"]["size_bytes"] < 0.5 * rows["fp32"]["size_bytes"]
    assert report["test_images"] > 0 and report["threads"] == 1


def test_missing_source_is_a_row_not_a_crash(benchmarked):
    run, report, stderr = benchmarked
    qat = report["rows"][-1]
    assert qat["status"] == "missing"
    assert qat["note"] == f"needs qat.keras; run 'edgecnn qat {run}' first"
    assert "[4/4] int8-qat: missing" in stderr  # progress per format on stderr


def test_exports_land_in_the_run_with_their_provenance(benchmarked):
    run, _, _ = benchmarked
    assert read_metadata(run / "model_int8.tflite").quantization_source == "ptq"
    assert read_metadata(run / "model_fp32.tflite").quantization == "none"


def test_artifacts_json_csv_png(benchmarked):
    run, report, _ = benchmarked
    assert json.loads((run / "benchmark.json").read_text())["rows"] == report["rows"]
    with open(run / "benchmark.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["format"] for r in rows] == ["keras", "fp32", "int8", "int8-qat"]
    assert set(bm.COLUMNS) <= set(rows[0]) and rows[3]["accuracy"] == ""
    assert (run / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_existing_exports_are_reused_and_the_table_is_printed(benchmarked):
    run, report, _ = benchmarked
    before = (run / "model_fp32.tflite").stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["benchmark", str(run), "--formats", "fp32", *FAST])
    assert result.exit_code == 0, result.output
    assert (run / "model_fp32.tflite").stat().st_mtime_ns == before
    header = result.stdout.splitlines()[1]
    assert header.split() == ["format", "status", "accuracy", "%", "top-1", "agree", "%", "size", "KB", "gzip", "KB",
                              "p50", "ms", "file"]
    assert "model_fp32.tflite" in result.stdout


def test_a_failing_format_shows_why_and_the_others_still_run(run_copy, monkeypatch):
    def broken_export(run, fmt, out):
        raise ValueError("converter exploded\nlong C++ trace")

    monkeypatch.setattr(bm, "export_format", broken_export)
    result = CliRunner().invoke(cli, ["benchmark", str(run_copy), "--formats", "keras,fp16", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["format"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["keras"]["status"] == "ok"
    assert rows["fp16"]["status"] == "failed" and rows["fp16"]["note"] == "ValueError: converter exploded"


def test_no_export_says_what_is_missing(run_copy):
    result = CliRunner().invoke(cli, ["benchmark", str(run_copy), "--formats", "fp16,pruned-int8", "--no-export",
                                      *FAST])
    assert result.exit_code == 2
    assert (f"Error: no format of {run_copy} could be benchmarked (fp16: not exported yet; run without --no-export, "
            f"or 'edgecnn export {run_copy} --quantize fp16 --from float --out {run_copy / 'model_fp16.tflite'}'; "
            f"pruned-int8: needs pruned.keras; run 'edgecnn prune {run_copy}' first)") in result.output
    assert not (run_copy / "benchmark.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--formats", "int9"], "Error: unknown format 'int9' (did you mean 'int8'?); choose from keras, fp32, fp16, "
                            "dynamic, int8, int8-qat, pruned-int8"),
    (["--threads", "0"], "Error: --threads must be a whole number >= 1, got 0"),
])
def test_bad_options(tiny_run, args, message):
    result = CliRunner().invoke(cli, ["benchmark", str(tiny_run.path), *args])
    assert result.exit_code == 2 and message in result.output


def test_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["benchmark", str(tmp_path), "--formats", "fp32"])
    assert result.exit_code == 2
    assert result.output == f"Error: {tmp_path} is an empty folder, not a run; create one with 'edgecnn train DATA --out {tmp_path}'\n"


def test_parse_formats_keeps_order_and_drops_repeats():
    assert [f.name for f in bm.parse_formats("int8, keras,int8")] == ["int8", "keras"]
    assert [f.name for f in bm.parse_formats(None)] == list(bm.FORMATS)
    with pytest.raises(RecipeError, match="--formats is empty"):
        bm.parse_formats(" , ")
