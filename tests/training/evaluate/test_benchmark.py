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
    """One real benchmark of keras, float-fp32, float-int8 and qat-int8 (which the tiny run lacks)."""
    run = shutil.copytree(tiny_run.path, tmp_path_factory.mktemp("bench") / "run")
    result = CliRunner().invoke(cli, ["benchmark", str(run), "--formats", "keras,float-fp32,float-int8,qat-int8", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    return run, json.loads(result.stdout), result.stderr


def test_rows_carry_accuracy_agreement_size_and_latency(benchmarked):
    _, report, _ = benchmarked
    rows = {row["format"]: row for row in report["rows"]}
    assert list(rows) == ["keras", "float-fp32", "float-int8", "qat-int8"]
    for name in ("keras", "float-fp32", "float-int8"):
        row = rows[name]
        assert row["status"] == "ok", row
        # The tiny run's recipe: the float model 0.981, 0.937, 0.967 on the test split with data.seed 0, 1, 2; through
        # the pipeline with seeds 0-3, fp32 0.952-0.970 and int8 0.952-0.970 (270 test images). Under the worst.
        assert 0.90 <= row["accuracy"] <= 1.0 and row["latency_ms_p50"] > 0
        assert 0 < row["gzip_bytes"] < row["size_bytes"]
    assert rows["keras"]["top1_agreement"] == 1.0
    # float32 TFLite computes what Keras computes; int8 nearly so.
    assert rows["float-fp32"]["top1_agreement"] >= 0.99
    assert rows["float-fp32"]["accuracy"] == pytest.approx(rows["keras"]["accuracy"], abs=0.01)
    # int8 (post-training) against Keras, data.seed 0, 1, 2, 3 through the pipeline: 0.993, 0.996, 0.981, 1.0 (at
    # most 5 of 270 flips); the bound allows 10.
    assert rows["float-int8"]["top1_agreement"] >= 0.96
    assert rows["float-int8"]["size_bytes"] < 0.5 * rows["float-fp32"]["size_bytes"]
    # The drops are measured from the float model on the same images: its accuracy is the keras row's.
    assert report["reference"] == {"file": "float.keras", "accuracy": rows["keras"]["accuracy"]}
    assert report["test_images"] > 0 and report["threads"] == 1


def test_missing_source_is_a_row_not_a_crash(benchmarked):
    run, report, stderr = benchmarked
    qat = report["rows"][-1]
    assert qat["status"] == "missing"
    assert qat["note"] == f"needs qat.keras; run 'edgecnn qat {run}' first"
    assert "[4/4] qat-int8: missing" in stderr  # progress per format on stderr


def test_exports_land_in_the_run_with_their_provenance(benchmarked):
    run, _, _ = benchmarked
    # Each file's name says which model it came from and how: float model, PTQ int8 / float32.
    assert read_metadata(run / "model_float_int8.tflite").quantization_source == "ptq"
    assert read_metadata(run / "model_float_fp32.tflite").quantization == "none"
    assert sorted(p.name for p in run.glob("*.tflite")) == ["model_float_fp32.tflite", "model_float_int8.tflite"]


def test_artifacts_json_csv_png(benchmarked):
    run, report, _ = benchmarked
    assert json.loads((run / "benchmark.json").read_text())["rows"] == report["rows"]
    with open(run / "benchmark.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["format"] for r in rows] == ["keras", "float-fp32", "float-int8", "qat-int8"]
    assert set(bm.COLUMNS) <= set(rows[0]) and rows[3]["accuracy"] == ""
    assert (run / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_existing_exports_are_reused_and_the_table_is_printed(benchmarked):
    run, report, _ = benchmarked
    before = (run / "model_float_fp32.tflite").stat().st_mtime_ns
    result = CliRunner().invoke(cli, ["benchmark", str(run), "--formats", "float-fp32", *FAST])
    assert result.exit_code == 0, result.output
    assert (run / "model_float_fp32.tflite").stat().st_mtime_ns == before
    header = result.stdout.splitlines()[1]
    assert header.split() == ["format", "source", "status", "accuracy", "%", "top-1", "agree", "%", "size", "KB",
                              "gzip", "KB", "p50", "ms", "file"]
    assert "model_float_fp32.tflite" in result.stdout


def test_a_failing_format_shows_why_and_the_others_still_run(run_copy, monkeypatch):
    def broken_export(run, fmt, out):
        raise ValueError("converter exploded\nlong C++ trace")

    monkeypatch.setattr(bm, "export_format", broken_export)
    result = CliRunner().invoke(cli, ["benchmark", str(run_copy), "--formats", "keras,float-fp16", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["format"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["keras"]["status"] == "ok"
    assert rows["float-fp16"]["status"] == "failed" and rows["float-fp16"]["note"] == "ValueError: converter exploded"


def test_no_export_says_what_is_missing(run_copy):
    result = CliRunner().invoke(cli, ["benchmark", str(run_copy), "--formats", "float-fp16,pruned-int8", "--no-export",
                                      *FAST])
    assert result.exit_code == 2
    assert (f"Error: no format of {run_copy} could be benchmarked (float-fp16: not exported yet; run without "
            f"--no-export, or 'edgecnn export {run_copy} --quantize fp16 --from float --out "
            f"{run_copy / 'model_float_fp16.tflite'}'; "
            f"pruned-int8: needs pruned.keras; run 'edgecnn prune {run_copy}' first)") in result.output
    assert not (run_copy / "benchmark.json").exists()


@pytest.mark.parametrize("args,message", [
    (["--formats", "int9"], "Error: unknown format 'int9' (did you mean 'qat-int8'?); choose from keras, float-fp32, "
                            "float-fp16, float-dynamic, float-int8, pruned-fp32, pruned-fp16, pruned-dynamic, "
                            "pruned-int8, qat-int8"),
    # An earlier version's name: refused with today's, which says the source model.
    (["--formats", "int8-qat"], "Error: format 'int8-qat' is now called 'qat-int8' (names say the source model)"),
    (["--prefer", "cheapest"], "Invalid value for '--prefer'"),
    (["--threads", "0"], "Error: --threads must be a whole number >= 1, got 0"),
])
def test_bad_options(tiny_run, args, message):
    result = CliRunner().invoke(cli, ["benchmark", str(tiny_run.path), *args])
    assert result.exit_code == 2 and message in result.output


def test_not_a_run(tmp_path):
    result = CliRunner().invoke(cli, ["benchmark", str(tmp_path), "--formats", "float-fp32"])
    assert result.exit_code == 2
    assert result.output == f"Error: {tmp_path} is an empty folder, not a run; create one with 'edgecnn train DATA --out {tmp_path}'\n"


def test_parse_formats_keeps_order_and_drops_repeats():
    assert [f.name for f in bm.parse_formats("float-int8, keras,float-int8")] == ["float-int8", "keras"]
    assert [f.name for f in bm.parse_formats(None)] == list(bm.FORMATS)
    with pytest.raises(RecipeError, match="--formats is empty"):
        bm.parse_formats(" , ")


def test_an_older_runs_files_are_found_by_their_metadata_not_their_name(benchmarked, tmp_path):
    """Runs made before files were named for their source model (model_int8-ptq.tflite) still benchmark."""
    run = shutil.copytree(benchmarked[0], tmp_path / "old")
    (run / "model_float_int8.tflite").rename(run / "model_int8-ptq.tflite")
    result = CliRunner().invoke(cli, ["benchmark", str(run), "--formats", "float-int8", "--no-export", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["rows"][0]
    assert (row["status"], row["file"], row["note"], row["source"]) == ("ok", "model_int8-ptq.tflite", "existing file",
                                                                       "float")
    assert not (run / "model_float_int8.tflite").exists()  # not exported again
