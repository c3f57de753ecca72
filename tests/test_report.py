"""The HTML report: one self-contained file built from a run's artifacts, text escaped."""

import base64
import json

from edgecnn.report import build_report
from edgecnn.rundir import RunDir

# The smallest valid PNG (1x1 transparent pixel), enough to prove images are embedded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def test_report_embeds_images_and_tables(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.recipe.write_text("model:\n  architecture: mobilenet_v1 <b>\n")
    run.curves_png.write_bytes(PNG)
    run.confusion_png.write_bytes(PNG)
    (run.path / "benchmark.png").write_bytes(PNG)
    run.evaluation.write_text(json.dumps({"accuracy": 0.9712, "num_samples": 270}))
    (run.path / "parity_int8.json").write_text(json.dumps(
        {"num_samples": 270, "top1_agreement": 0.996, "max_abs_error": 0.02, "mean_abs_error": 0.001,
         "reference": {"accuracy": 0.97}, "candidate": {"accuracy": 0.968}, "passed": True}))
    run.benchmark_json.write_text(json.dumps({"rows": [
        {"format": "int8", "status": "ok", "accuracy": 0.968, "top1_agreement": 0.996, "size_bytes": 61234,
         "gzip_bytes": 50000, "latency_ms_p50": 0.21},
        {"format": "fp16", "status": "failed: <converter error>", "accuracy": None},
    ]}))

    page = build_report(run.path).read_text()

    assert page.count("src='data:image/png;base64,") == 3
    assert "0.9712" in page and "61234" in page and "0.996" in page
    assert "<span class='ok'>pass</span>" in page
    # User-controlled text is escaped, never injected.
    assert "mobilenet_v1 &lt;b&gt;" in page
    assert "failed: &lt;converter error&gt;" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_report_of_a_partial_run_says_what_is_missing(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    page = build_report(run.path).read_text()
    assert "not available: benchmark.json" in page
    assert "not available: curves.png" in page
