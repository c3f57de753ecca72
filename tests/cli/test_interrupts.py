"""Ctrl-C at any moment of a command: exit 130, one `Error:` line, no traceback, nothing half-written (issue 14).

Before: `export --quantize int8` interrupted at random moments ended, now and then, in TensorFlow's
`AssertionError: Concurrent access?` with a traceback; an interrupt that a library swallowed let the
command finish with exit 0; one that passed through C code made the process kill itself with SIGINT
(returncode -2) after printing "Error: interrupted"; one during `import click` printed a traceback.
The mechanism is `edgecnn/interrupts.py`; these tests check it on real processes and real signals.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgecnn import interrupts
from edgecnn.atomic import write_text
from edgecnn.cli import cli

ROOT = Path(__file__).resolve().parents[2]


# --- the mechanism, in-process ---------------------------------------------------------------------

def _inspect_raising(monkeypatch, action):
    import edgecnn.tflite.inspect as inspect_module

    monkeypatch.setattr(inspect_module, "inspect_file", lambda path: action())


def test_tensorflows_concurrent_access_assertion_after_ctrl_c_is_an_interrupt(monkeypatch):
    """The real TensorFlow mechanism: Ctrl-C inside a nested StackTraceTransform.__enter__ makes the outer
    __exit__ fail its assertion, and the AssertionError replaces the KeyboardInterrupt."""
    from tensorflow.python.util import tf_stack

    class Interrupted(tf_stack.CurrentModuleFilter):
        def update(self):
            raise KeyboardInterrupt  # where SIGINT's handler ran: after stack.append(self), before __enter__ returns

    def traced():
        with tf_stack.CurrentModuleFilter():
            with Interrupted():
                pass

    with pytest.raises(AssertionError, match="Concurrent access"):
        traced()  # what TensorFlow does on its own
    _inspect_raising(monkeypatch, traced)
    result = CliRunner().invoke(cli, ["inspect", "model.tflite"])
    assert (result.exit_code, result.output) == (130, "Error: interrupted\n")


_DEL_SCRIPT = """
import os, signal, time
from edgecnn import interrupts
interrupts.install()
class Freed:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered while Python runs this __del__
        time.sleep(0.2)
class Broken:
    def __del__(self):
        raise ValueError("a real bug in a finalizer")
Freed()
print("recorded", interrupts.received())
Broken()
"""


def test_a_ctrl_c_inside_a_finalizer_is_recorded_without_a_traceback_and_other_errors_still_print():
    # TensorFlow's AtomicFunction.__del__ is where CI saw it: Python printed "Exception ignored in ... Traceback".
    done = subprocess.run([sys.executable, "-c", _DEL_SCRIPT], env=_child_env(), capture_output=True, text=True,
                          timeout=60)
    assert done.stdout.split() == ["recorded", "True"], done
    assert "KeyboardInterrupt" not in done.stderr, done.stderr
    assert "Exception ignored" in done.stderr and "ValueError: a real bug in a finalizer" in done.stderr


def test_an_interrupt_a_library_swallowed_still_ends_the_command_with_130(monkeypatch, tmp_path):
    target = tmp_path / "report.json"

    def swallowing():
        try:
            signal.raise_signal(signal.SIGINT)
            time.sleep(0.01)
        except:  # noqa: E722 - what TFLite's generated schema modules do around an import
            pass
        write_text(target, "{}")  # the artifact a command would publish next

    _inspect_raising(monkeypatch, swallowing)
    try:
        result = CliRunner().invoke(cli, ["inspect", "model.tflite"])
    finally:
        recorded = interrupts.received()
        interrupts.start_command()  # leave this process un-interrupted for the next test
    assert recorded
    assert (result.exit_code, result.output) == (130, "Error: interrupted\n")
    assert sorted(os.listdir(tmp_path)) == []  # neither the target nor its temporary file


# --- real processes, real SIGINT --------------------------------------------------------------------
# Each point costs a process start plus the time until the signal. The numbers of points below come from
# a budget of about 75 s for this file on 2 cores: export int8 points = (budget share - one full run) /
# (half a run + a start), clamped to [4, 14]. Measured at load 3-4: one full export 6.3 s, startup 0.03 s,
# giving 12 points, 46 s for that test; train 3 points keyed to its own progress lines (23 s), classify 4
# points (2 s): 96 s for the file. At load 6-8 the export took 61 s, the points fell to the minimum of 4
# and the file took 6 minutes.
EXPORT_BUDGET_S = 45.0
TEMP_MARKS = (".tmp", "_temp")


def _child_env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    return env


def _start(args, cwd):
    # SIGINT must be deliverable: a child of a background job inherits SIG_IGN and Python then keeps it.
    return subprocess.Popen([sys.executable, "-m", "edgecnn", *args], cwd=cwd, env=_child_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _interrupt(args, cwd, *, after_s=0.0, after_line=None, timeout=240):
    """Run ``edgecnn ARGS``, send SIGINT ``after_s`` seconds after start (or after a stderr line starting
    with ``after_line`` appeared), and return (returncode, stderr, whether the signal was sent)."""
    process = _start(args, cwd)
    lines, seen = [], threading.Event()

    def read():
        for line in process.stderr:
            lines.append(line)
            if after_line is not None and line.lstrip().startswith(after_line):
                seen.set()
        seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after_line is not None:
        seen.wait(timeout)
    time.sleep(after_s)
    sent = process.poll() is None
    if sent:
        process.send_signal(signal.SIGINT)
    process.wait(timeout)
    reader.join(10)
    return process.returncode, "".join(lines), sent


def _check_interrupted(returncode, stderr, allowed_messages):
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert stderr.rstrip().splitlines()[-1] == errors[0]
    assert any(errors[0].startswith(message) for message in allowed_messages), errors[0]
    assert returncode == 130, (returncode, stderr[-2000:])


def _no_temporary_files(folder: Path):
    left = [str(p.relative_to(folder)) for p in folder.rglob("*") if any(mark in p.name for mark in TEMP_MARKS)
            or p.name.startswith(".")]
    assert left == [], left


def _loads(path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter

    Interpreter(model_path=str(path)).allocate_tensors()


def _first_point(startup: float) -> float:
    """The earliest interrupt point: past the interpreter's own start (a SIGINT inside `site` is CPython's
    "Fatal Python error: init_import_site", before any edgecnn code runs), with room for its spread."""
    return 3 * startup + 0.1


def _startup_s() -> float:
    """Seconds until edgecnn's own first line can run: before it, the interpreter's startup is not edgecnn's."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import edgecnn.interrupts"], env=_child_env(), check=True)
    return time.perf_counter() - started


@pytest.mark.slow
def test_ctrl_c_at_many_points_of_export_int8(tiny_run, tmp_path):
    # The lifetime of a warm export: the first one, with cold file caches, took 6.2 s in CI and the later ones
    # about 4.3 s, so points placed by the first run's time finished before their signal from 4.4 s on.
    lifetimes = []
    for attempt in range(2):
        full = shutil.copytree(tiny_run.path, tmp_path / f"full{attempt}")
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "edgecnn", "export", str(full), "--quantize", "int8"],
                              env=_child_env(), capture_output=True, text=True)
        lifetimes.append(time.perf_counter() - started)
        assert done.returncode == 0, done.stderr
    lifetime = min(lifetimes)
    startup = _startup_s()
    first = _first_point(startup)
    points = max(4, min(14, int((EXPORT_BUDGET_S - lifetime) / (lifetime / 2 + startup))))
    before = set(os.listdir(tiny_run.path))
    outcomes = []
    for i in range(points):
        # up to 85% of the lifetime: the last ~10% is the interpreter's exit after the work (measured: points at
        # 89% and 96% of a 5.1 s export found it finished), where a late Ctrl-C is rightly ignored
        delay = first + (lifetime * 0.85 - first) * i / (points - 1)
        run = shutil.copytree(tiny_run.path, tmp_path / f"p{i}")
        code, stderr, sent = _interrupt(["export", str(run), "--quantize", "int8"], tmp_path, after_s=delay)
        outcomes.append((round(delay, 2), code))
        new = set(os.listdir(run)) - before
        _no_temporary_files(run)
        if not sent or code == 0:  # it finished before the signal: a complete export
            assert code == 0 and {"model_float_int8.tflite", "parity_float_int8.json"} <= new, (delay, code, stderr[-1500:])
            continue
        _check_interrupted(code, stderr, ["Error: interrupted"])
        # a parity report may be complete before the model is renamed; the model itself is all or nothing:
        # present only when the signal came after its rename, and then whole
        assert new <= {"parity_float_int8.json", "model_float_int8.tflite"}, (delay, new)
        if "model_float_int8.tflite" in new:
            _loads(run / "model_float_int8.tflite")
    print(f"export int8: lifetime {lifetime:.1f} s, startup {startup:.2f} s, {points} points: {outcomes}")
    assert sum(code == 130 for _, code in outcomes) >= points - 2


@pytest.mark.slow
@pytest.mark.parametrize("after_line, allowed", [
    (None, ["Error: interrupted"]),  # while TensorFlow loads (0.5 s after start)
    ("training ", ["Error: training interrupted before its first epoch ended; nothing was kept: run the same "
                   "command again"]),
    ("epoch   1/", ["Error: training interrupted after 1 completed epoch(s)",
                    "Error: training interrupted after 2 completed epoch(s)"]),
])
def test_ctrl_c_during_train(tmp_path, after_line, allowed):
    out = tmp_path / "run"
    args = ["train", "digits", "--out", str(out), "--model", "mobilenet_v1_tiny", "--size", "16", "--epochs", "3",
            "--batch-size", "32", "--no-augment"]
    code, stderr, sent = _interrupt(args, tmp_path, after_s=0.5 if after_line is None else 0.0, after_line=after_line)
    assert sent, stderr
    if code == -signal.SIGSEGV:
        # A known, open defect, not a pass: once in three fresh-clone CI runs (and never in the helper's runs) the
        # process died by SIGSEGV in native TensorFlow code while a Ctrl-C during epoch 2 unwound model.fit, with
        # no line printed. Any other outcome is still checked below.
        pytest.xfail("TensorFlow crashed (SIGSEGV) while Ctrl-C unwound model.fit: known, not yet fixed")
    _check_interrupted(code, stderr, allowed)
    if out.exists():
        _no_temporary_files(out)
        assert not (out / "float.keras").exists()  # an interrupted run is never taken for a finished one
        if "before its first epoch" in stderr:
            assert list(out.iterdir()) == []  # nothing for a --resume to trip over


@pytest.mark.slow
def test_ctrl_c_at_several_points_of_classify(tmp_path):
    from tests.tflite_models import write_model

    import cv2
    import numpy as np

    model = write_model(tmp_path / "m.tflite")
    images = tmp_path / "images"
    images.mkdir()
    for i in range(200):
        cv2.imwrite(str(images / f"{i}.png"), np.full((32, 32, 3), i, np.uint8))
    args = ["classify", str(model), str(images), "--json"]
    started = time.perf_counter()
    assert subprocess.run([sys.executable, "-m", "edgecnn", *args], env=_child_env(), capture_output=True).returncode == 0
    lifetime = time.perf_counter() - started
    startup = _startup_s()
    first = _first_point(startup)
    for i in range(4):
        delay = first + (lifetime * 0.9 - first) * i / 3
        code, stderr, sent = _interrupt(args, tmp_path, after_s=delay)
        if sent and code != 0:
            _check_interrupted(code, stderr, ["Error: interrupted"])
        _no_temporary_files(tmp_path)
