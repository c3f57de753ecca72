"""A native crash at process teardown (seen after LiteRT's GPU accelerator: free(): invalid pointer,
exit 134) must not turn a finished command's exit code into a failure, nor lose its output."""

import subprocess
import sys

import pytest

# A C-level exit handler that aborts stands in for the crashing native destructor: exit() runs it,
# os._exit() does not.
CODE = """
import ctypes, sys
from edgecnn.runtime import native_exit
libc = ctypes.CDLL("libc.so.6")
libc.__cxa_atexit(libc.abort, None, None)  # what C++ static destructors register
if sys.argv[1] == "loaded":
    native_exit.mark_accelerator_loaded()
print("the command's output")
native_exit.finish(int(sys.argv[2]))
"""


def _run(*args):
    return subprocess.run([sys.executable, "-c", CODE, *args], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("code", [0, 2])
def test_exit_code_and_output_survive_a_crashing_native_teardown(code):
    done = _run("loaded", str(code))
    assert done.returncode == code and done.stdout == "the command's output\n"


def test_the_simulated_crash_is_real_without_the_accelerator_mark():
    done = _run("not-loaded", "0")
    assert done.returncode == -6  # SIGABRT from the native handler: the case finish() avoids


def test_cli_on_the_gpu_exits_zero_with_its_json(gpu_accelerator, tmp_path):
    import json

    from tflite_models import write_model

    model = write_model(tmp_path / "m.tflite")
    done = subprocess.run([sys.executable, "-m", "edgecnn", "profile", str(model), "--delegate", "gpu", "--json",
                           "--runs", "3", "--warmup", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["delegate"] == "gpu"
