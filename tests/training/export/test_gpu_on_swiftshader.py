"""Every registered architecture, in every export mode, on LiteRT's real GPU accelerator (SwiftShader
in CI): edgecnn's static GPU rules agree with the accelerator's own is_fully_accelerated(), and the
GPU computes what the CPU computes."""

from __future__ import annotations

import numpy as np
import pytest
from optimize_helpers import shared_digits, shared_export

from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.preprocess import prepare_image, read_image
from edgecnn.tflite.gpu_rules import check_model
from edgecnn.tflite.inspect import inspect_file
from edgecnn.training.models.mobilenet import MODELS  # importing it registers every architecture

pytestmark = pytest.mark.slow
# Largest CPU-vs-GPU score difference allowed. Float and fp16 files: SwiftShader computes in fp32, so
# only summation order differs (measured <= 3e-8 on these exports, 1.7e-6 on a trained digits model).
# int8: the GPU dequantizes and computes in float, so results land output steps (1/256) apart: measured
# <= 2 steps on these seeded untrained exports (trained int8 models: up to 16, see docs/device.md).
TOLERANCE = {"none": 1e-5, "fp16": 1e-5, "dynamic": 1e-5, "int8": 2 / 256 + 1e-6}


@pytest.mark.parametrize("mode", ["none", "fp16", "dynamic", "int8"])
@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_gpu_rules_and_results_agree_with_the_accelerator(gpu_accelerator, tmp_path_factory, architecture, mode):
    path = shared_export(tmp_path_factory, architecture, mode).path
    report = check_model(inspect_file(path))
    gpu = TFLiteClassifier(path, threads=1, delegate="gpu")
    assert gpu.delegate == "gpu"
    assert report.compatible == gpu.interpreter.is_fully_accelerated(), report.unsupported_ops[:3]
    assert report.compatible, report.unsupported_ops[:3]  # measured: every export runs fully on the accelerator

    cpu = TFLiteClassifier(path, threads=1)
    images = sorted(shared_digits(tmp_path_factory).rglob("*.png"))[:20]
    batch = np.stack([prepare_image(read_image(p), cpu.spec) for p in images])
    on_gpu, on_cpu = gpu.predict(batch), cpu.predict(batch)
    assert np.abs(on_gpu - on_cpu).max() <= TOLERANCE[mode]
    # Top-1 must agree wherever the CPU's best class leads by more than the tolerance (ties may flip).
    ordered = np.sort(on_cpu, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > 2 * TOLERANCE[mode]
    np.testing.assert_array_equal(on_gpu.argmax(1)[clear], on_cpu.argmax(1)[clear])
