"""The CLI group: lazy commands, one-line errors, no traceback."""

import subprocess
import sys

from click.testing import CliRunner

from edgecnn.cli import COMMANDS, cli


def test_help_lists_every_command_without_importing_them():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert name in result.output


def test_every_command_module_exists_and_defines_its_command():
    import importlib

    for name, (module, attr, _) in COMMANDS.items():
        command = getattr(importlib.import_module(f"edgecnn.cli.{module}"), attr)
        assert command.name == name


def test_unknown_command_fails_cleanly():
    result = CliRunner().invoke(cli, ["trian"])
    assert result.exit_code == 2
    assert "No such command 'trian'" in result.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "edgecnn, version" in result.output


def test_console_script_prints_one_line_error_and_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "from edgecnn.cli import main; main()", "inspect", str(tmp_path / "missing.tflite")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("Error: ")
    assert len(proc.stderr.strip().splitlines()) == 1
