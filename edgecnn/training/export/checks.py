"""The checks every export passes before it is written: a full-integer graph for int8, and the GPU
delegate's or the Edge TPU's op support for those targets. A failed check is a one-line error."""

from __future__ import annotations

from edgecnn.errors import ModelError
from edgecnn.tflite import edgetpu, gpu_rules
from edgecnn.tflite.inspect import inspect_bytes


def check_int8(info, io: str) -> dict:
    """A full-integer graph: no float tensor inside, inputs/outputs of the requested type."""
    floats = info.float_tensors()
    if floats:
        raise ModelError(f"the int8 model still has {len(floats)} float tensor(s) inside (e.g. {floats[0]!r}); "
                         "this is a converter problem: please report it")
    wrong = [t.name for t in (*info.inputs, *info.outputs) if t.dtype != io]
    if wrong:
        raise ModelError(f"the int8 model's input/output {wrong[0]!r} is not {io}; please report it")
    return {"full_integer": True, "io": io, "ops": info.op_histogram()}


def run_checks(data: bytes, mode: str, io: str, target: str) -> dict:
    info = inspect_bytes(data)
    checks = {}
    if mode == "int8":
        checks["int8"] = check_int8(info, io)
    if target == "gpu":
        report = gpu_rules.check_model(info)
        if not report.compatible:
            first = (report.unsupported_ops or [{"op": "", "reason": p} for p in report.problems])[0]
            raise ModelError(f"the GPU delegate cannot run {len(report.unsupported_ops) or 'all'} op(s) of this model "
                             f"(e.g. {first['op']} {first['reason']}); export with --target cpu instead")
        checks["gpu"] = report.to_dict()
    if target == "edgetpu":
        checks["edgetpu"] = edgetpu.check_model(info).to_dict()
    return checks
