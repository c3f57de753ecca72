"""What the runtime really did, not what edgecnn reports: OS threads of XNNPACK's pool, delegates that load.

Each check runs in a fresh subprocess, so no other test's interpreters or thread pools are counted.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from fake_delegate import build_fake_delegate, calls
from tflite_models import write_model

TESTS = Path(__file__).resolve().parents[1]

# Makes an interpreter through edgecnn's factory with N threads, invokes it, and prints how many OS threads
# (/proc/self/task) the process gained. Measured with ai-edge-litert 2.3: N threads -> N - 1 new threads
# (XNNPACK's pthreadpool workers; the calling thread is the Nth), gone again when the interpreter is freed.
_COUNT_THREADS = """
import json, os, sys
import numpy as np
from edgecnn.runtime.interpreter import load_interpreter
def tasks():
    return len(os.listdir("/proc/self/task"))
gained = {}
for arg in sys.argv[2:]:
    threads = None if arg == "default" else int(arg)
    before = tasks()
    loaded = load_interpreter(sys.argv[1], threads=threads)
    detail = loaded.interpreter.get_input_details()[0]
    loaded.interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    loaded.interpreter.invoke()
    gained[arg] = tasks() - before
    del loaded, detail
print(json.dumps(gained))
"""

# Runs the real CLI in this process and, after every invoke of the real LiteRT interpreter, writes how
# many OS threads the process has. The spy only counts; the interpreter and the CLI are untouched.
_CLI_WITH_THREAD_COUNT = """
import os, runpy, sys
from ai_edge_litert import interpreter as litert
real_invoke = litert.Interpreter.invoke
def counting_invoke(self, *args, **kwargs):
    result = real_invoke(self, *args, **kwargs)
    with open(os.environ["THREAD_COUNT_FILE"], "a") as f:
        f.write(f"{len(os.listdir('/proc/self/task'))}\\n")
    return result
litert.Interpreter.invoke = counting_invoke
sys.argv = ["edgecnn", *sys.argv[1:]]
runpy.run_module("edgecnn", run_name="__main__")
"""


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), os.environ.get("PYTHONPATH", "")])}
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("effects")
    model = write_model(folder / "float.tflite")
    image = folder / "red.png"
    cv2.imwrite(str(image), np.full((8, 8, 3), (0, 0, 255), np.uint8))  # BGR on disk: pure red
    return {"folder": folder, "model": model, "image": image}


@pytest.fixture(scope="module")
def fake_delegate(tmp_path_factory):
    return build_fake_delegate(tmp_path_factory.mktemp("delegate"))


def test_interpreter_factory_starts_one_worker_thread_per_extra_thread(files):
    done = subprocess.run([sys.executable, "-c", _COUNT_THREADS, str(files["model"]), "1", "2", "4", "3", "default"],
                          capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stderr[-2000:]
    gained = json.loads(done.stdout.strip().splitlines()[-1])
    assert gained["1"] == 0 and gained["2"] == 1 and gained["4"] == 3 and gained["3"] == 2, gained
    # The default is every core, at most 4 (a Pi has 4): the pool shows it, not only the reported number.
    assert gained["default"] == max(1, min(4, os.cpu_count() or 1)) - 1, gained


@pytest.mark.parametrize("command", ["classify", "run"])
def test_cli_threads_option_reaches_the_runtime(files, tmp_path, command):
    counts = {}
    for threads in (1, 3):
        count_file = tmp_path / f"{command}-{threads}.txt"
        args = [command, str(files["model"]), str(files["image"]), "--threads", str(threads), "--json"]
        if command == "run":
            args = [command, str(files["model"]), "--source", str(files["folder"]), "--headless",
                    "--threads", str(threads), "--json"]
        done = subprocess.run([sys.executable, "-c", _CLI_WITH_THREAD_COUNT, *args], capture_output=True, text=True,
                              timeout=120, env=_env(THREAD_COUNT_FILE=str(count_file)))
        assert done.returncode == 0, done.stderr[-2000:]
        counts[threads] = int(count_file.read_text().split()[0])
    # Everything else in the process (OpenCV's pool, Python) is the same in both runs; the 2 extra
    # threads are XNNPACK's workers for --threads 3.
    assert counts[3] - counts[1] == 2, counts


def _classify(files, *args, **env):
    return subprocess.run([sys.executable, "-m", "edgecnn", "classify", str(files["model"]), str(files["image"]),
                           "--json", *args], capture_output=True, text=True, timeout=120, env=_env(**env))


def test_delegate_path_reaches_the_interpreter(files, fake_delegate, tmp_path):
    log = tmp_path / "delegate.log"
    done = _classify(files, "--delegate", "gpu", "--delegate-path", str(fake_delegate),
                     EDGECNN_FAKE_DELEGATE_LOG=str(log))
    assert done.returncode == 0, done.stderr[-2000:]
    # Created, applied to the graph by the interpreter (Prepare), and freed; the answer is still right,
    # because the delegate claims no nodes and the CPU kernels run them.
    assert calls(log) == ["create", "prepare", "destroy"], calls(log)
    assert json.loads(done.stdout.splitlines()[0])["label"] == "red"


def test_edgetpu_delegate_is_loaded_by_name_with_the_device_option(files, fake_delegate, tmp_path):
    # The fake library under the Edge TPU runtime's own name, found by the dynamic loader as libedgetpu is.
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "libedgetpu.so.1").write_bytes(fake_delegate.read_bytes())
    log = tmp_path / "delegate.log"
    env = {"EDGECNN_FAKE_DELEGATE_LOG": str(log), "LD_LIBRARY_PATH": str(tmp_path / "lib")}
    done = _classify(files, "--delegate", "edgetpu", "--device", "usb:1", **env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert calls(log) == ["create device=usb:1", "prepare", "destroy"], calls(log)
    assert "running on the CPU" not in done.stderr


def test_delegate_that_refuses_is_a_one_line_error_not_a_cpu_run(files, fake_delegate, tmp_path):
    log = tmp_path / "delegate.log"
    env = {"EDGECNN_FAKE_DELEGATE_LOG": str(log), "EDGECNN_FAKE_DELEGATE_MODE": "refuse"}
    done = _classify(files, "--delegate", "gpu", "--delegate-path", str(fake_delegate), **env)
    assert done.returncode != 0 and done.stdout == ""
    assert calls(log) == ["create"]
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"delegate library {fake_delegate} loaded but refused to create a delegate " \
           f"(Failed to load delegate from {fake_delegate}; fake delegate: no device found)" in errors[0]
    # With --fallback cpu the refusal becomes a warning, and the CPU run is said, not silent.
    done = _classify(files, "--delegate", "gpu", "--delegate-path", str(fake_delegate), "--fallback", "cpu", **env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "running on the CPU instead (--fallback cpu)" in done.stderr
    assert calls(log) == ["create", "create"]  # asked again, never prepared
