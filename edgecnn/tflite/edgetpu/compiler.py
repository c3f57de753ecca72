"""``edgetpu_compiler``: find it, run it, and read its operation log into an ``EdgeTpuReport``.

The compiler exists only for x86-64 Linux (Coral's apt repository); ``find_edgetpu_compiler``
returns None elsewhere, and ``compiler_hint`` says how to get it.
"""

from __future__ import annotations

import dataclasses
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from edgecnn.errors import ModelError, RuntimeUnavailable
from edgecnn.tflite.edgetpu.report import MAPPED, EdgeTpuReport, OpPlacement

COMPILER_NAME = "edgetpu_compiler"
COMPILER_HINT = (
    "edgetpu_compiler is not installed here; it runs only on x86-64 Linux: add Coral's apt repository "
    "(https://coral.ai/software/#debian-packages) and run 'sudo apt-get install edgetpu-compiler', then "
    "'edgetpu_compiler -s MODEL.tflite' (or export again)"
)


# --- the compiler -------------------------------------------------------------------------------------

def find_edgetpu_compiler() -> str | None:
    """Path of ``edgetpu_compiler`` when it is on PATH, else None."""
    return shutil.which(COMPILER_NAME)


def compiler_hint() -> str:
    machine = f"{platform.system()} {platform.machine()}"
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return (f"edgetpu_compiler runs only on x86-64 Linux, and this is {machine}: compile the model on such a "
                "host (Coral's apt repository, package edgetpu-compiler) or in Coral's Colab notebook")
    return COMPILER_HINT


@dataclasses.dataclass
class CompilerLog:
    version: str
    ops: list[tuple[str, int, str]]  # (operator, count, status) rows of the operation table
    on_edgetpu: int | None
    on_cpu: int | None


_VERSION = re.compile(r"Edge TPU Compiler version (\S+)")
_ROW = re.compile(r"^(?P<op>[A-Z][A-Z0-9_]*|[a-z][\w-]*)\s+(?P<count>\d+)\s+(?P<status>\S.*?)\s*$")
_ON_TPU = re.compile(r"Number of operations that will run on Edge TPU:\s*(\d+)")
_ON_CPU = re.compile(r"Number of operations that will run on CPU:\s*(\d+)")


def parse_compiler_log(text: str) -> CompilerLog:
    """The operation table (and counts) of edgetpu_compiler's output or its .log file."""
    version = _VERSION.search(text)
    rows, in_table = [], False
    for line in text.splitlines():
        if re.match(r"^\s*Operator\s+Count\s+Status\s*$", line):
            in_table = True
            continue
        if in_table:
            match = _ROW.match(line.strip())
            if match:
                rows.append((match["op"], int(match["count"]), match["status"]))
            elif rows and line.strip():
                in_table = False  # the table ended
    on_tpu, on_cpu = _ON_TPU.search(text), _ON_CPU.search(text)
    return CompilerLog(version[1] if version else "unknown", rows,
                       int(on_tpu[1]) if on_tpu else None, int(on_cpu[1]) if on_cpu else None)


def report_from_compiler(log: CompilerLog) -> EdgeTpuReport:
    placements, index = [], 0
    for op, count, status in log.ops:
        for _ in range(count):
            placements.append(OpPlacement(index, op, status == MAPPED, status))
            index += 1
    compatible = bool(placements) and all(p.on_edgetpu for p in placements)
    if log.on_cpu:
        compatible = False
    return EdgeTpuReport(compatible, [], placements, source=f"edgetpu_compiler {log.version}")


def compile_for_edgetpu(path, *, compiler: str | None = None, timeout: float = 600.0) -> EdgeTpuReport:
    """Run edgetpu_compiler on ``path``; writes ``<stem>_edgetpu.tflite`` (and .log) beside it.

    The compiler writes into a temporary folder first, so a failed run leaves nothing behind.
    Raises RuntimeUnavailable when the compiler is absent, ModelError when it rejects the model.
    """
    path = Path(path)
    compiler = compiler or find_edgetpu_compiler()
    if compiler is None:
        raise RuntimeUnavailable(compiler_hint())
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        try:
            done = subprocess.run([compiler, "-s", "-o", tmp, str(path)], capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise ModelError(f"edgetpu_compiler did not finish within {timeout:.0f} s on {path}") from None
        except OSError as exc:
            raise RuntimeUnavailable(f"cannot run {compiler}: {exc.strerror or exc}; {COMPILER_HINT}") from None
        produced = Path(tmp) / f"{path.stem}_edgetpu.tflite"
        if done.returncode != 0 or not produced.is_file():
            last = next((l for l in reversed((done.stderr + done.stdout).splitlines()) if l.strip()), "no output")
            raise ModelError(f"edgetpu_compiler could not compile {path.name}: {last.strip()[:240]}")
        log_file = Path(tmp) / f"{path.stem}_edgetpu.log"
        log_text = log_file.read_text(errors="replace") if log_file.is_file() else ""
        report = report_from_compiler(parse_compiler_log(done.stdout if "Operator" in done.stdout else log_text))
        target = path.with_name(produced.name)
        shutil.move(str(produced), target)
        if log_file.is_file():
            shutil.move(str(log_file), path.with_name(log_file.name))
            report.compiler_log = str(path.with_name(log_file.name))
    report.compiled_path = str(target)
    return report
