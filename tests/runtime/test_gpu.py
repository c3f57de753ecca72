"""LiteRT's GPU accelerator for real, on SwiftShader (a software Vulkan device; tools/gpu_emulation.sh).

Tests marked with the ``gpu_accelerator`` fixture run whenever the accelerator initialises and skip
with the reason otherwise; CI installs SwiftShader so they run there. Tests of the absent path make
the absence themselves (``VK_DRIVER_FILES=/nonexistent`` in a subprocess) instead of assuming it.
"""

import json
import os
import subprocess
import time
import sys

import cv2
import numpy as np
import pytest

from edgecnn.runtime.interpreter import load_interpreter
from edgecnn.runtime.profile.profiler import ProfileSettings, invoke_and_read, profile_model, time_invokes
from tflite_models import write_model

EDGECNN = [sys.executable, "-m", "edgecnn"]
NO_VULKAN = {"VK_DRIVER_FILES": "/nonexistent", "VK_ICD_FILENAMES": "/nonexistent"}


def run_edgecnn(*args, env=None):
    return subprocess.run([*EDGECNN, *map(str, args)], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpu")
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 0] = 230  # mostly red: class 0 ("red") in an RGB model
    cv2.imwrite(str(folder / "red.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return {"float": write_model(folder / "float.tflite"), "int8": write_model(folder / "int8.tflite", kind="int8"),
            "image": folder / "red.png", "folder": folder}


def test_gpu_absent_is_a_one_line_error_naming_what_was_tried(models):
    result = run_edgecnn("classify", models["float"], models["image"], "--delegate", "gpu", env=NO_VULKAN)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    error = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1 and "no usable GPU accelerator" in error[0]
    assert "VK_DRIVER_FILES=/nonexistent" in error[0] and "vk_swiftshader_icd.json" in error[0]
    fallback = run_edgecnn("classify", models["float"], models["image"], "--delegate", "gpu", "--fallback", "cpu",
                           "--json", env=NO_VULKAN)
    assert fallback.returncode == 0, fallback.stderr
    assert json.loads(fallback.stdout.splitlines()[0])["label"] == "red"


def test_doctor_says_gpu_fails_when_no_adapter_initialises():
    result = run_edgecnn("doctor", "--json", env=NO_VULKAN)
    assert result.returncode == 0, result.stderr
    gpu = json.loads(result.stdout)["delegates"]["gpu"]
    assert gpu["available"] is False and "no adapter initialised" in gpu["detail"]


def test_doctor_says_gpu_works_when_it_ran(gpu_accelerator):
    result = run_edgecnn("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # also: nothing LiteRT printed reached stdout
    assert report["delegates"]["gpu"]["available"] is True and "correct result" in report["delegates"]["gpu"]["detail"]


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_gpu_runs_the_model_fully_and_agrees_with_the_cpu(gpu_accelerator, models, kind):
    gpu = load_interpreter(models[kind], delegate="gpu")
    cpu = load_interpreter(models[kind], delegate="cpu")
    assert gpu.delegate == "gpu" and gpu.interpreter.is_fully_accelerated()
    detail = cpu.interpreter.get_input_details()[0]
    info = np.iinfo(detail["dtype"]) if kind == "int8" else None
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = (rng.integers(info.min, info.max, detail["shape"], endpoint=True).astype(detail["dtype"]) if info
             else rng.uniform(-1, 1, detail["shape"]).astype(np.float32))
        outputs = []
        for loaded in (gpu, cpu):
            runner = loaded.interpreter
            runner.set_tensor(runner.get_input_details()[0]["index"], x)
            runner.invoke()
            outputs.append(runner.get_tensor(runner.get_output_details()[0]["index"]).astype(np.float64))
        # float: SwiftShader computes in fp32, measured difference <= 1e-6; int8: one quantization step at most.
        np.testing.assert_allclose(outputs[0], outputs[1], atol=1.0 if kind == "int8" else 1e-5)


@pytest.mark.parametrize("command", ["classify", "profile"])
def test_json_parses_with_the_gpu_delegate(gpu_accelerator, models, command):
    # LiteRT prints "INFO: Failed to load OpenCL library ..." to stdout while the accelerator loads;
    # before the redirect, this stdout did not parse.
    args = ([models["float"], models["image"], "--json"] if command == "classify"
            else [models["float"], "--json", "--runs", "5", "--warmup", "1"])
    result = run_edgecnn(command, *args, "--delegate", "gpu")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.strip()] if command == "classify" \
        else [json.loads(result.stdout)]
    assert records and all(isinstance(r, dict) for r in records)
    if command == "classify":
        assert records[0]["label"] == "red"
    else:
        assert records[0]["delegate"] == "gpu"


def test_profiled_gpu_latency_matches_an_invoke_and_read_loop(gpu_accelerator, models):
    """The GPU invoke returns before the work is done: the profiler must time until the output is read."""
    path = models["float"]
    loaded = load_interpreter(path, delegate="gpu")
    runner = loaded.interpreter
    detail = runner.get_input_details()[0]
    runner.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    out = runner.get_output_details()[0]["index"]

    def loop_p50():
        time_invokes(invoke_and_read(runner), 20)
        samples = []
        for _ in range(100):
            start = time.perf_counter_ns()
            runner.invoke()
            runner.get_tensor(out)
            samples.append(time.perf_counter_ns() - start)
        return float(np.median(samples)) / 1e6

    loops, profiled = [], []
    for _ in range(5):  # interleaved, so a slow phase of the shared machine hits both alike
        loops.append(loop_p50())
        profiled.append(profile_model(path, ProfileSettings(threads=(1,), runs=100, warmup=20,
                                                            delegate="gpu"))["latency_ms"]["p50"])
    # The best round of each: other jobs on a shared machine only ever add time. Measured on 2 shared
    # cores: at load 2, loops 0.86-0.93 ms, profile 0.80-1.03 ms; at load 10, loops 0.17-4.1 ms and
    # profile 0.18-4.8 ms per round, best rounds 3-4% apart (once +67%, every profile round slowed).
    # The defect this guards against is under-reporting (invoke alone: 0.02-0.03 ms, 30x less), so the
    # bound below is 10%; above, the profile may not exceed the loop's own slowest round by more than 10%.
    reference, measured = min(loops), min(profiled)
    assert measured >= 0.9 * reference, (loops, profiled)
    assert measured <= 1.1 * max(loops), (loops, profiled)
    invoke_only = float(np.median(time_invokes(runner.invoke, 200))) / 1e6
    runner.get_tensor(out)
    assert invoke_only < reference / 2, "the GPU invoke no longer returns early; the check above proves nothing"


@pytest.mark.parametrize("command", ["run", "parity", "inspect"])
def test_json_parses_on_the_other_commands_with_the_gpu_delegate(gpu_accelerator, models, command):
    """The rest of the device commands: stdout is edgecnn's JSON alone, whatever LiteRT prints at load."""
    args = {
        "run": ["run", models["float"], "--source", models["folder"], "--headless", "--json", "--delegate", "gpu"],
        "parity": ["parity", models["float"], models["int8"], "--data", models["folder"], "--json",
                   "--candidate-delegate", "gpu"],
        "inspect": ["inspect", models["int8"], "--json", "--target", "gpu"],
    }[command]
    result = run_edgecnn(*args)
    assert result.returncode == 0, result.stderr
    # run prints JSON lines; parity and inspect one indented document
    records = ([json.loads(line) for line in result.stdout.splitlines() if line.strip()] if command == "run"
               else [json.loads(result.stdout)])
    assert records and all(isinstance(r, dict) for r in records)
    if command == "run":
        assert records[0]["label"] == "red"  # the one image of the folder, classified on the GPU
    if command == "parity":
        assert records[0]["num_samples"] == 1
