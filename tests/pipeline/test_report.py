"""The HTML report: one self-contained file built from a run's artifacts, text escaped."""

import base64
import json

from edgecnn.pipeline.report import build_report
from edgecnn.rundir import RunDir

# The smallest valid PNG (1x1 transparent pixel), enough to prove images are embedded.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def test_report_embeds_images_and_tables(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.recipe.write_text("name: my <recipe>\nmodel:\n  architecture: mobilenet_v1 <b>\n")
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
    assert "<h1>edgecnn report: my &lt;recipe&gt;</h1>" in page
    assert "failed: &lt;converter error&gt;" in page
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere


def test_report_of_a_partial_run_says_what_is_missing(tmp_path):
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    page = build_report(run.path).read_text()
    assert "not available: benchmark.json" in page
    assert "not available: curves.png" in page


def test_report_renders_in_a_real_browser(tmp_path):
    """Headless Chromium draws the report with its images (skipped where Chromium is not installed)."""
    import shutil
    import subprocess
    from pathlib import Path

    import numpy as np
    import pytest

    if not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    cv2 = pytest.importorskip("cv2")
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    # A large, saturated red image: if the browser draws it, the screenshot has a red block.
    red = np.zeros((300, 600, 3), np.uint8)
    red[:, :, 2] = 255
    cv2.imwrite(str(run.curves_png), red)
    build_report(run.path)
    shot = tmp_path / "shot.png"
    script = Path(__file__).parents[2] / "tools" / "check_report_in_browser.sh"
    subprocess.run(["bash", str(script), str(run.report_html), str(shot)], check=True, timeout=120,
                   capture_output=True)
    pixels = cv2.imread(str(shot))
    reddish = (pixels[:, :, 2] > 200) & (pixels[:, :, 1] < 60) & (pixels[:, :, 0] < 60)
    assert reddish.sum() > 100_000  # most of the 600x300 image is on screen
