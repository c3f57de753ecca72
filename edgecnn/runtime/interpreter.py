"""Load a .tflite model into a TFLite interpreter, with a delegate, without TensorFlow.

Runtime preference: ``ai_edge_litert`` (LiteRT, the maintained successor), then
``tflite_runtime`` (older Pis, pycoral set-ups), then ``tensorflow.lite`` only when neither is
installed (it takes seconds to import and is deprecated; we say so in a warning).

Delegates: ``cpu`` (XNNPACK, LiteRT's default), ``edgetpu`` (Coral's libedgetpu), ``gpu``
(a delegate library given by path, else LiteRT's GPU accelerator). A delegate that cannot load
raises RuntimeUnavailable naming what is missing and how to install it, unless the caller asked
for ``fallback="cpu"``, in which case we warn and run on the CPU.
"""

from __future__ import annotations

import ctypes
import dataclasses
import importlib
import os
import platform
import re
from importlib import metadata
from pathlib import Path
from typing import Any

from edgecnn.errors import ModelError, RecipeError, RuntimeUnavailable, closest
from edgecnn.runtime.litert_gpu import load_gpu_model
from edgecnn.runtime.native_stdout import native_stdout_to_stderr
from edgecnn.tflite.flatbuffer import TFLITE_IDENTIFIER, parse_model, read_tflite_bytes
from edgecnn.tflite.graph_outputs import with_extra_outputs

DELEGATES = ("cpu", "edgetpu", "gpu")
FALLBACKS = (None, "cpu")
EDGETPU_CUSTOM_OP = "edgetpu-custom-op"
# Coral's runtime library per platform (as pycoral names them).
EDGETPU_LIBRARY = {"Linux": "libedgetpu.so.1", "Darwin": "libedgetpu.1.dylib", "Windows": "edgetpu.dll"}
EDGETPU_INSTALL_HINT = (
    "install the Edge TPU runtime: on Debian/Raspberry Pi OS add Coral's apt repository "
    "(https://coral.ai/software/#debian-packages) and run 'sudo apt-get install libedgetpu1-std'"
)
# pycoral's device strings: ":N", "usb", "usb:N", "pci", "pci:N".
_EDGETPU_DEVICE = re.compile(r"^(usb|pci)?(:\d+)?$")
# Where each runtime's Interpreter lives, in order of preference.
_RUNTIMES = (
    ("ai_edge_litert", "ai_edge_litert.interpreter"),
    ("tflite_runtime", "tflite_runtime.interpreter"),
    ("tensorflow", "tensorflow.lite"),
)


@dataclasses.dataclass
class LoadedInterpreter:
    interpreter: Any  # an allocated Interpreter (or an object with the same methods)
    runtime: str  # "ai_edge_litert" | "tflite_runtime" | "tensorflow"
    runtime_version: str
    delegate: str  # the delegate actually used: "cpu", "edgetpu", "gpu"
    threads: int
    warnings: list[str] = dataclasses.field(default_factory=list)
    model_path: Path | None = None


@dataclasses.dataclass
class _Runtime:
    name: str
    version: str
    Interpreter: Any
    load_delegate: Any
    warning: str = ""


def default_threads() -> int:
    """Interpreter threads when none are asked for: every core, at most 4 (a Pi has 4)."""
    return max(1, min(4, os.cpu_count() or 1))


def import_runtime() -> _Runtime:
    """The preferred TFLite runtime that is installed, or RuntimeUnavailable."""
    for name, module_name in _RUNTIMES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if name == "tensorflow":
            return _Runtime(name, _version_of("tensorflow"), module.Interpreter, module.experimental.load_delegate,
                            warning="using tensorflow.lite because neither ai-edge-litert nor tflite-runtime is "
                                    "installed; it starts slowly and is deprecated: pip install ai-edge-litert")
        return _Runtime(name, _version_of(name.replace("_", "-")), module.Interpreter, module.load_delegate)
    raise RuntimeUnavailable(
        "no TFLite runtime is installed (tried ai_edge_litert, tflite_runtime, tensorflow.lite); "
        "run: pip install \"edgecnn[device]\""
    )


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def load_interpreter(model_path, *, threads: int | None = None, delegate: str = "cpu", device: str | None = None,
                     delegate_path=None, fallback: str | None = None, extra_outputs=()) -> LoadedInterpreter:
    """An allocated interpreter for ``model_path`` on the requested delegate.

    ``extra_outputs``: tensor indices exposed as outputs after the model's own (in memory; the
    class activation map of ``run --explain`` reads the final feature map in the scores' invoke).

    The file is checked (exists, is a TFLite flatbuffer, parses) before any interpreter sees
    it, so a corrupt file is a one-line ModelError rather than a crash in C++.
    """
    _check_options(threads, delegate, device, delegate_path, fallback)
    runtime = import_runtime()
    data, schema_warning = _read_model_bytes(model_path)
    if extra_outputs:
        data = with_extra_outputs(data, extra_outputs)
    threads = threads or default_threads()
    warnings = [w for w in (runtime.warning, schema_warning) if w]

    # LiteRT prints some load messages to stdout (measured: the OpenCL dlopen line, at GPU load; none
    # at invoke), so loading happens with fd 1 on stderr and `--json` output stays parseable.
    with native_stdout_to_stderr():
        return _load(runtime, data, model_path, threads, delegate, device, delegate_path, fallback, warnings)


def _load(runtime, data, model_path, threads, delegate, device, delegate_path, fallback, warnings):
    delegate_used, delegates, gpu_model = "cpu", [], None
    if delegate != "cpu":
        try:
            if delegate == "edgetpu":
                delegates = [load_edgetpu_delegate(runtime, device)]
            elif delegate_path is not None:
                delegates = [load_library_delegate(runtime, delegate_path)]
            else:
                gpu_model = load_gpu_model(data, runtime.name)
            delegate_used = delegate
        except RuntimeUnavailable as exc:
            if fallback != "cpu":
                raise
            warnings.append(f"{exc}; running on the CPU instead (--fallback cpu)")

    if gpu_model is not None and not gpu_model.is_fully_accelerated():
        warnings.append("LiteRT's GPU accelerator does not run every op of this model; the rest runs on the CPU "
                        "(edgecnn inspect --target gpu names the ops)")
    if delegate_used != "edgetpu":
        _refuse_edgetpu_only_model(data, model_path)
    interpreter = gpu_model or _create_interpreter(runtime, data, model_path, threads, delegates)
    return LoadedInterpreter(interpreter=interpreter, runtime=runtime.name, runtime_version=runtime.version,
                             delegate=delegate_used, threads=threads, warnings=warnings, model_path=Path(model_path))


def _read_model_bytes(model_path) -> tuple[bytes, str]:
    """The checked model bytes, and a warning when only the cheap check was possible.

    The full check parses the flatbuffer with ai_edge_litert's schema; on an install that has
    only tflite_runtime we can still check the file identifier.
    """
    try:
        return read_tflite_bytes(model_path), ""
    except ModuleNotFoundError:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"model file {path} does not exist; check the path") from None
        data = path.read_bytes()
        if data[4:8] != TFLITE_IDENTIFIER:
            raise ModelError(f"{path} is not a TFLite model (no 'TFL3' flatbuffer identifier); check the file") from None
        return data, "ai-edge-litert is not installed, so the model file was only checked for its identifier"


def _check_options(threads, delegate, device, delegate_path, fallback) -> None:
    if delegate not in DELEGATES:
        raise RecipeError(f"unknown delegate {delegate!r}{closest(str(delegate), DELEGATES)}; use one of {', '.join(DELEGATES)}")
    if fallback not in FALLBACKS:
        raise RecipeError(f"unknown fallback {fallback!r}; the only fallback is 'cpu'")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise RecipeError(f"threads must be a whole number >= 1, got {threads!r}")
    if device is not None and delegate != "edgetpu":
        raise RecipeError(f"--device {device} only applies to --delegate edgetpu")
    if device is not None and not _EDGETPU_DEVICE.match(device):
        raise RecipeError(f"Edge TPU device {device!r} is not valid; use usb, usb:N, pci, pci:N or :N")
    if delegate_path is not None and delegate == "edgetpu":
        raise RecipeError("--delegate-path is for --delegate gpu; the Edge TPU library is found by name")
    if delegate_path is not None and delegate == "cpu":
        raise RecipeError("--delegate-path needs --delegate gpu")


def load_edgetpu_delegate(runtime: _Runtime, device: str | None):
    """Coral's Edge TPU delegate, or RuntimeUnavailable saying whether the library or the device is missing."""
    library = EDGETPU_LIBRARY.get(platform.system(), "libedgetpu.so.1")
    if not library_loadable(library):
        raise RuntimeUnavailable(f"Edge TPU delegate unavailable: {library} is not installed; {EDGETPU_INSTALL_HINT}")
    options = {"device": device} if device else {}
    try:
        return runtime.load_delegate(library, options)
    except (ValueError, RuntimeError) as exc:
        where = device or "any USB or PCIe port"
        raise RuntimeUnavailable(
            f"Edge TPU delegate could not open a Coral at {where} ({_joined_lines(exc)}); check the device is "
            "plugged in (lsusb lists it as 'Global Unichip' or 'Google') and that your user may access it"
        ) from None


def load_library_delegate(runtime: _Runtime, delegate_path):
    """An external delegate from a shared library (e.g. libtensorflowlite_gpu_delegate.so)."""
    path = Path(delegate_path)
    if not path.is_file():
        raise RuntimeUnavailable(f"delegate library {path} does not exist; give the path of a TFLite delegate .so/.dll")
    # Check before load_delegate: its Delegate object prints an "Exception ignored" traceback from
    # __del__ when the library does not open or lacks the plugin functions.
    problem = _delegate_library_problem(str(path))
    if problem:
        raise RuntimeUnavailable(f"delegate library {path} could not be loaded ({problem}); it must be a TFLite "
                                 "external delegate built for this CPU architecture")
    try:
        return runtime.load_delegate(str(path))
    except (ValueError, RuntimeError) as exc:
        raise RuntimeUnavailable(f"delegate library {path} loaded but refused to create a delegate "
                                 f"({_joined_lines(exc)}); check its options and the hardware it drives") from None


def _delegate_library_problem(name: str) -> str:
    """Why ``name`` cannot serve as a TFLite external delegate, or '' if it can."""
    try:
        library = ctypes.CDLL(name)
    except OSError as exc:
        return _first_line(exc)
    missing = [f for f in _DELEGATE_FUNCTIONS if not hasattr(library, f)]
    return f"it does not export {', '.join(missing)}" if missing else ""


_DELEGATE_FUNCTIONS = ("tflite_plugin_create_delegate", "tflite_plugin_destroy_delegate")


def library_loadable(name: str) -> bool:
    """True if the dynamic loader can open ``name`` (a bare soname searches the usual paths)."""
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def _refuse_edgetpu_only_model(data: bytes, model_path) -> None:
    # A model compiled by edgetpu_compiler holds its work in one custom op that only the Edge
    # TPU delegate can run; on the CPU the interpreter would fail with an opaque message.
    try:
        names = custom_op_names(data)
    except ModuleNotFoundError:  # no flatbuffer schema without ai-edge-litert; the interpreter will complain
        return
    if EDGETPU_CUSTOM_OP in names:
        raise ModelError(
            f"{model_path} was compiled for the Edge TPU and runs only with --delegate edgetpu; "
            "use the model's CPU version (without _edgetpu) on this machine"
        )


def custom_op_names(data: bytes) -> set[str]:
    model = parse_model(data)
    names = set()
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i).CustomCode()
        if code:
            names.add(code.decode("utf-8", "replace"))
    return names


def _create_interpreter(runtime: _Runtime, data: bytes, model_path, threads: int, delegates: list):
    try:
        interpreter = runtime.Interpreter(model_content=data, num_threads=threads,
                                          experimental_delegates=delegates or None)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{model_path} cannot be loaded by {runtime.name} ({_first_line(exc)}); it may use ops this "
            "runtime lacks: re-export it with edgecnn or upgrade ai-edge-litert"
        ) from None
    return interpreter


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].strip() if text else type(exc).__name__


def _joined_lines(exc: BaseException) -> str:
    # load_delegate's ValueError is "Failed to load delegate from X" and, on the next line, the reason the
    # library itself reported (e.g. libedgetpu's): keep both, on one line.
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def runtime_info() -> dict:
    """Which runtime would load models here and which delegates could load (for doctor and profile)."""
    info: dict = {"runtime": None, "runtime_version": None, "runtime_warning": None}
    try:
        runtime = import_runtime()
        info.update(runtime=runtime.name, runtime_version=runtime.version, runtime_warning=runtime.warning or None)
    except RuntimeUnavailable as exc:
        info["runtime_warning"] = str(exc)
    library = EDGETPU_LIBRARY.get(platform.system(), "libedgetpu.so.1")
    info["edgetpu_library"] = library
    info["edgetpu_library_found"] = library_loadable(library)
    info["default_threads"] = default_threads()
    return info
