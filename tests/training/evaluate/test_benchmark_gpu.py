"""`edgecnn benchmark --delegates cpu,gpu`: GPU rows beside the CPU rows, on LiteRT's real accelerator."""

import json
import shutil

import pytest
import yaml
from click.testing import CliRunner

from edgecnn.cli import cli

pytestmark = pytest.mark.slow


def test_gpu_rows_carry_accuracy_agreement_and_latency(gpu_accelerator, tiny_run, tmp_path):
    run = shutil.copytree(tiny_run.path, tmp_path / "run")
    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    (run / "recipe.yaml").write_text(yaml.safe_dump({**recipe, "deploy": {"target": "gpu"}}))
    result = CliRunner().invoke(cli, ["benchmark", str(run), "--formats", "keras,float-fp32,float-int8", "--delegates", "cpu,gpu",
                                      "--runs", "5", "--warmup", "1", "--threads", "1", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {row["format"]: row for row in report["rows"]}
    assert list(rows) == ["keras", "float-fp32", "float-fp32@gpu", "float-int8", "float-int8@gpu"]
    one_image = 1.0 / report["test_images"]
    for name in ("float-fp32", "float-int8"):
        cpu, gpu = rows[name], rows[f"{name}@gpu"]
        assert gpu["status"] == "ok" and gpu["delegate"] == "gpu" and gpu["latency_ms_p50"] > 0, gpu
        assert gpu["file"] == cpu["file"]  # the same file, run on the other delegate
        # Measured on SwiftShader, 270 digits test images: mobilenet_v1_tiny (this run) agreed on every top-1
        # answer in fp32 and int8; the worst architecture (mobilenet_v2_tiny int8) on 269. Allow one image.
        assert abs(gpu["accuracy"] - cpu["accuracy"]) <= one_image + 1e-9
        assert abs(gpu["top1_agreement"] - cpu["top1_agreement"]) <= one_image + 1e-9
    csv_formats = [line.split(",")[0] for line in (run / "benchmark.csv").read_text().splitlines()[1:]]
    assert csv_formats == list(rows)
    # A GPU deploy target recommends among the rows measured on the GPU, by their own figures.
    deploy = report["deploy"]
    considered = set(deploy["passing"]) | {r["format"] for r in deploy["rejected"]}
    assert considered == {"float-fp32@gpu", "float-int8@gpu"}
    assert deploy["status"] == "recommended", deploy  # fp32 agrees on every image, int8 on 269 of 270 here
    smallest = min((rows[name] for name in deploy["passing"]), key=lambda row: row["size_bytes"])
    assert deploy["recommended"]["format"] == smallest["format"]


def test_unknown_delegate_is_a_one_line_error(tiny_run):
    result = CliRunner().invoke(cli, ["benchmark", str(tiny_run.path), "--delegates", "cpu,gpux"])
    assert result.exit_code != 0
    assert "Error: unknown delegate 'gpux' (did you mean 'gpu'?) in --delegates" in result.output
