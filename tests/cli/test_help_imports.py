"""What `edgecnn --help` and `edgecnn <command> --help` import, seen in a fresh `python -m edgecnn` process.

The command table promises that help is shown without importing the command modules, and that a
command imports only its own module. Each case runs the real entry point in a subprocess and reads
``sys.modules`` when the process exits (an atexit hook: it runs on both of edgecnn's exit paths).
"""

import json
import os
import subprocess
import sys

import pytest

from edgecnn.cli import COMMANDS

# Libraries that no help text needs: the training stack, OpenCV, the TFLite runtime.
HEAVY = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "sklearn", "cv2", "ai_edge_litert")
# Shared option types, not a command.
SHARED_CLI_MODULES = {"edgecnn.cli.options"}

_PROBE = """
import atexit, json, os, runpy, sys
def report():
    with open(os.environ["IMPORTS_FILE"], "w") as f:
        json.dump(sorted(sys.modules), f)
atexit.register(report)
sys.argv = ["edgecnn", *sys.argv[1:]]
runpy.run_module("edgecnn", run_name="__main__", alter_sys=True)
"""


def imported_by(tmp_path, *args) -> tuple[set[str], set[str]]:
    """(edgecnn.cli command modules, heavy top-level packages) in sys.modules after ``edgecnn ARGS``."""
    record = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "IMPORTS_FILE": str(record)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage: edgecnn" in done.stdout
    modules = json.loads(record.read_text())
    commands = {m for m in modules if m.startswith("edgecnn.cli.")} - SHARED_CLI_MODULES
    heavy = {m.split(".")[0] for m in modules if m.split(".")[0] in HEAVY}
    return commands, heavy


def test_top_level_help_imports_no_command_module(tmp_path):
    commands, heavy = imported_by(tmp_path, "--help")
    assert commands == set() and heavy == set()


@pytest.mark.parametrize("name", list(COMMANDS))
def test_command_help_imports_only_its_own_module(tmp_path, name):
    commands, heavy = imported_by(tmp_path, name, "--help")
    assert commands == {f"edgecnn.cli.{COMMANDS[name][0]}"}
    assert heavy == set()
