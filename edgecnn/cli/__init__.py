"""The ``edgecnn`` command line.

Each command lives in its own module under ``edgecnn/cli/`` and is imported only when
it runs, so ``edgecnn --help`` and the device-side commands never import TensorFlow.
Library code raises ``EdgecnnError`` subclasses; this group turns them into a one-line
``Error: ...`` and the error's exit code, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from edgecnn import __version__, interrupts
from edgecnn.errors import EXTRA_OF_MODULE, EdgecnnError, environment_write_error, missing_extra
from edgecnn.runtime.native_exit import finish

# name -> (module under edgecnn.cli, attribute, one-line help shown by --help without importing it)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "models": ("train_cmds", "models", "List the registered architectures with params and MACs."),
    "train": ("train_cmds", "train", "Train a float model from an image folder or a built-in dataset."),
    "evaluate": ("train_cmds", "evaluate", "Accuracy, per-class report and confusion matrix of a run."),
    "prune": ("optimize_cmds", "prune", "Magnitude-prune a run's float model to a target sparsity."),
    "qat": ("optimize_cmds", "qat", "Int8 quantization-aware training of a run's (pruned) model."),
    "export": ("optimize_cmds", "export", "Export a run or a Keras model to .tflite (float, fp16, dynamic, int8)."),
    "inspect": ("inspect_cmd", "inspect", "Show a .tflite model's tensors, ops, metadata and Edge TPU fit."),
    "parity": ("parity_cmd", "parity", "Check that a quantized model agrees with its float original."),
    "run": ("run_cmd", "run", "Live classifier on a camera, stream, video file or image folder."),
    "classify": ("run_cmd", "classify", "Classify still images or folders of images."),
    "serve": ("serve_cmd", "serve", "Serve a .tflite model over HTTP with metrics and health checks."),
    "doctor": ("doctor_cmd", "doctor", "Show the runtime, OpenCV, delegates and camera backends found."),
    "profile": ("profile_cmds", "profile", "Measure a .tflite model's latency and memory on this device."),
    "compare": ("profile_cmds", "compare", "Tabulate profile reports from several devices side by side."),
    "devices": ("profile_cmds", "devices", "List the device profiles edgecnn knows."),
    "benchmark": ("benchmark_cmd", "benchmark", "Accuracy, size and latency of every format of a run, side by side."),
    "pipeline": ("pipeline_cmds", "pipeline", "Run a recipe end to end: train, prune, QAT, export, parity, benchmark."),
    "demo": ("pipeline_cmds", "demo", "The whole pipeline on built-in data, then the live loop on a generated clip."),
    "explain": ("explain_cmd", "explain", "Heatmaps of what a model looks at (Grad-CAM, CAM), float vs int8 attention."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, attr, _ = COMMANDS[name]
        try:
            module = importlib.import_module(f"{__name__}.{module_name}")
        except ModuleNotFoundError as exc:
            # A command whose extra is not installed (e.g. `train` on a device-only install).
            missing = exc.name or "a dependency"
            return _unavailable_command(name, missing)
        return getattr(module, attr)

    def invoke(self, ctx):
        # Converting here (not only in main) means click's CliRunner sees the same
        # one-line message and exit code that a user does.
        interrupts.start_command()
        try:
            result = super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BaseException as exc:
            raise _as_user_error(exc, ctx) from None
        # A Ctrl-C that a library swallowed (a bare except around an import) still ends the command.
        if interrupts.received():
            raise _UserError("interrupted", interrupts.EXIT_CODE)
        return result

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _as_user_error(exc: BaseException, ctx) -> "_UserError":
    """The one line a user sees for ``exc``; re-raises what is a bug (a traceback is then right)."""
    if interrupts.caused_by_interrupt(exc) and getattr(exc, "exit_code", None) != interrupts.EXIT_CODE:
        # Ctrl-C, or whatever a library raised instead (TensorFlow's "Concurrent access?" assertion).
        return _UserError("interrupted", interrupts.EXIT_CODE)
    if isinstance(exc, EdgecnnError):
        return _UserError(str(exc), exc.exit_code)
    if isinstance(exc, OSError):
        # The last net for writes outside edgecnn.atomic (OpenCV, TensorFlow, logs): a full,
        # read-only or foreign folder is the user's to fix, not a traceback.
        error = environment_write_error(exc, verb="use")
        if error is not None:
            return _UserError(str(error), error.exit_code)
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.split(".")[0] in EXTRA_OF_MODULE:
        return _UserError(_missing_module_message(ctx.invoked_subcommand or "", exc.name), 2)
    raise exc


class _UserError(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _missing_module_message(command: str, module: str) -> str:
    return missing_extra(f"'edgecnn {command}'", module)


def _unavailable_command(name: str, missing: str) -> click.Command:
    @click.command(name=name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def _missing():
        raise EdgecnnError(_missing_module_message(name, missing))

    return _missing


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecnn")
def cli():
    """edgecnn: train, prune, quantize, verify and run compact image classifiers on edge devices."""


def main(argv=None):
    """Entry point of the ``edgecnn`` script (``edgecnn.entry`` calls it)."""
    interrupts.install()
    try:
        cli.main(args=argv, prog_name="edgecnn")
    except SystemExit as exc:
        interrupts.ignore()
        if interrupts.received() or exc.code == interrupts.EXIT_CODE:
            if exc.code != interrupts.EXIT_CODE:  # Ctrl-C outside a command (click printed "Aborted!")
                print("Error: interrupted", file=sys.stderr)
            interrupts.leave(interrupts.EXIT_CODE)
        # A native crash while LiteRT's GPU accelerator tears down must not turn a finished command
        # into a failure (runtime/native_exit.py).
        finish(exc.code)
    interrupts.ignore()
    finish(0)
