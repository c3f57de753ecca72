"""`edgecnn parity FILE FILE --candidate-delegate gpu`: one file on the CPU against the same file on
LiteRT's GPU accelerator (SwiftShader in CI)."""

import json

import cv2
import numpy as np
from click.testing import CliRunner
from tflite_models import write_model

from edgecnn.cli import cli


def _folder(root):
    rng = np.random.default_rng(0)
    for index, name in enumerate(("red", "green", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(4):
            rgb = rng.integers(0, 90, (8, 8, 3)).astype(np.uint8)
            rgb[..., index] = 200 + i * 10
            cv2.imwrite(str(root / name / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root


def test_one_file_on_cpu_and_gpu(gpu_accelerator, tmp_path):
    data = _folder(tmp_path / "images")
    for kind in ("float", "int8"):
        model = write_model(tmp_path / f"{kind}.tflite", kind=kind)
        result = CliRunner().invoke(cli, ["parity", str(model), str(model), "--data", str(data),
                                          "--candidate-delegate", "gpu", "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        # Measured: SwiftShader computes in fp32, CPU and GPU agree on every top-1 answer.
        assert report["top1_agreement"] == 1.0 and report["candidate"]["accuracy"] == 1.0, kind


def test_a_delegate_for_a_keras_model_is_refused(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    keras_file = tmp_path / "m.keras"
    keras_file.write_bytes(b"PK")
    result = CliRunner().invoke(cli, ["parity", str(model), str(keras_file), "--data", str(tmp_path),
                                      "--candidate-delegate", "gpu"])
    assert result.exit_code == 2
    assert f"Error: --reference-delegate/--candidate-delegate gpu applies to .tflite files, not {keras_file}" in result.output
