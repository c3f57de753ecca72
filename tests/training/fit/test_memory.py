"""Training refuses, before decoding a single image, a run whose memory estimate exceeds what is available (issue 14).

Before, `train D --size 1024 --batch-size 512` decoded for minutes and died in numpy or TensorFlow (or was
killed by the kernel). The estimate is `edgecnn/training/fit/memory.py`'s; these tests use the real one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import DataError
from edgecnn.recipe import apply_overrides, default_recipe
from edgecnn.training.fit import memory

ROOT = Path(__file__).resolve().parents[3]
DIGITS = 1797  # images in the built-in digits set
MESSAGE = re.compile(r"Error: training needs about ([\d.]+) GiB of memory \(([\d.]+) GiB of activations at --batch-size "
                     r"(\d+) and --size (\d+), ([\d.]+) GiB for (\d+) decoded images\) but only ([\d.]+) GiB is "
                     r"available; lower --batch-size or --size, or use fewer images\n")


def _recipe(size, batch):
    return apply_overrides(default_recipe(), {"model.architecture": "mobilenet_v1_tiny", "model.size": size,
                                              "train.batch_size": batch})


def test_size_1024_at_batch_512_is_refused_against_this_machines_real_memory(tmp_path, monkeypatch):
    monkeypatch.delenv(memory.ENV_AVAILABLE, raising=False)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "--out", str(out), "--model", "mobilenet_v1_tiny",
                                      "--size", "1024", "--batch-size", "512"])
    assert result.exit_code == 2, result.output
    match = MESSAGE.fullmatch(result.output)
    assert match, result.output
    need, activations, batch, size, images, count, free = match.groups()
    assert (batch, size, count) == ("512", "1024", str(DIGITS))
    assert float(need) > float(free)
    # the available figure is this machine's: MemAvailable (or less, under a cgroup limit)
    meminfo = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("MemAvailable:"))
    assert float(free) <= meminfo / 2**30 * 1.1
    # decoded images: 1797 x 1024 x 1024 x 3 bytes, three copies (memory.IMAGE_COPIES)
    assert float(images) == pytest.approx(DIGITS * 1024 * 1024 * 3 * 3 / 2**30, abs=0.01)
    assert "Traceback" not in result.output
    assert not out.exists()


def test_a_smaller_machine_refuses_a_run_that_fits_here_and_leaves_nothing(tmp_path, monkeypatch):
    # The estimate for 16 px at batch 32 is a few MiB; a "machine" with 1 MB available refuses it.
    monkeypatch.setenv(memory.ENV_AVAILABLE, str(10**6))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "--out", str(out), "--model", "mobilenet_v1_tiny",
                                      "--size", "16", "--batch-size", "32", "--epochs", "1"])
    assert result.exit_code == 2, result.output
    assert MESSAGE.fullmatch(result.output), result.output
    assert "but only 0.00 GiB is available" in result.output
    assert not out.exists()


def test_the_boundary_is_the_estimate_itself(monkeypatch):
    recipe = _recipe(32, 64)
    monkeypatch.setenv(memory.ENV_AVAILABLE, str(10**12))
    found = memory.check_fits(recipe, 10, DIGITS)
    monkeypatch.setenv(memory.ENV_AVAILABLE, str(found.total))
    assert memory.check_fits(recipe, 10, DIGITS) == found
    monkeypatch.setenv(memory.ENV_AVAILABLE, str(found.total - 1))
    with pytest.raises(DataError, match="training needs about"):
        memory.check_fits(recipe, 10, DIGITS)
    # activations grow with the batch size exactly; decoded images do not depend on it
    monkeypatch.setenv(memory.ENV_AVAILABLE, str(10**12))
    bigger = memory.check_fits(_recipe(32, 128), 10, DIGITS)
    assert bigger.activations == 2 * found.activations and bigger.images == found.images


def test_a_malformed_override_is_one_line(monkeypatch):
    monkeypatch.setenv(memory.ENV_AVAILABLE, "lots")
    with pytest.raises(DataError, match="EDGECNN_MEMORY_AVAILABLE must be a number of bytes, got 'lots'"):
        memory.available_bytes()


# Measured (tools: this test's own commands, digits, mobilenet_v1_tiny, 1 epoch, 2 shared cores, load 4-7):
# the estimate divided by the peak RSS a run adds above a process that imported TensorFlow and built the model:
#   size 64, batch 256: 1.03    size 128, batch 128: 1.16    size 192, batch 64: 1.08
# and 1.26 for size 128, batch 128 in this test's own first run (its baseline read 640 MiB, not 574).
# The bound below allows allocator and thread-count differences around that spread.
RATIO_BOUNDS = (0.75, 1.5)


def _peak_rss_kib(env, *args) -> tuple[int, int]:
    """(exit code, peak RSS in KiB) of ``python *args``, run from a small intermediate Python process.

    Not spawned from pytest directly: Linux keeps a process's peak RSS across exec, and subprocess starts
    children with vfork, so a child of a large pytest process (1.5 GB after the training tests) reports
    pytest's peak as its own. The intermediate process is small, and reports its child's peak alone.
    """
    wrapper = ("import resource, subprocess, sys; p = subprocess.run([sys.executable, *sys.argv[1:]], "
               "capture_output=True); print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    done = subprocess.run([sys.executable, "-c", wrapper, *args], env=env, capture_output=True, text=True, check=True)
    code, peak = map(int, done.stdout.split()[-2:])
    return code, peak


@pytest.mark.slow
def test_the_estimate_is_close_to_the_measured_peak_of_a_real_run(tmp_path):
    size, batch = 128, 128
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    base_code, base_kib = _peak_rss_kib(env, "-c", "from edgecnn.training.models import build_model; "
                                        f"build_model('mobilenet_v1_tiny', num_classes=10, size={size})")
    code, peak_kib = _peak_rss_kib(env, "-m", "edgecnn", "train", "digits", "--out", str(tmp_path / "run"),
                                   "--model", "mobilenet_v1_tiny", "--size", str(size), "--batch-size", str(batch),
                                   "--epochs", "1", "--no-augment")
    assert base_code == 0 and code == 0
    estimate = memory.check_fits(_recipe(size, batch), 10, DIGITS).total
    ratio = estimate / ((peak_kib - base_kib) * 1024)
    print(f"estimate {estimate / 2**20:.0f} MiB, peak {peak_kib / 1024:.0f} MiB, baseline {base_kib / 1024:.0f} MiB, "
          f"ratio {ratio:.2f}")
    assert RATIO_BOUNDS[0] <= ratio <= RATIO_BOUNDS[1]
