"""A stand-in for Coral's ``edgetpu_compiler`` (not installable here), written to behave as the real one does.

What it copies from the real compiler, as public documentation (coral.ai/docs/edgetpu/compiler) and
compiler logs published in google-coral/edgetpu issues show it:

* ``edgetpu_compiler -s -o DIR MODEL.tflite`` writes ``DIR/MODEL_edgetpu.tflite`` and ``DIR/MODEL_edgetpu.log``.
* The ops it maps, from the first op up to the first it cannot map (without ``-a`` it makes one Edge TPU
  subgraph), are replaced by one custom op, ``edgetpu-custom-op``, whose custom options hold the compiled
  program; the ops after it stay as they were and run on the CPU ("More than one subgraph is not supported").
* The output is a new flatbuffer: the input's metadata entries and the zip of associated files appended
  after it are not carried over (which is why edgecnn embeds its metadata again).
* stdout: version, "Model compiled successfully", sizes, "Number of Edge TPU subgraphs", "Total number of
  operations", "Operation log", and with ``-s`` the operation table ("Operator  Count  Status"), preceded by
  the CPU/Edge TPU counts when not every op maps. The .log file has the version, "Input:", "Output:" and the
  table. A float model: "Invalid model: MODEL" / "Model not quantized", exit 1, no files.

Which ops map is a small table of its own (the ops edgecnn's architectures use), not edgecnn's rules, so
the test does not check edgecnn against itself. ``FAKE_EDGETPU_CALLS``, when set, gets one line per run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

VERSION = "16.0.384591198"
MAPPED = "Mapped to Edge TPU"
AFTER_FIRST = "More than one subgraph is not supported"
NOT_SUPPORTED = "Operation not supported"
CUSTOM_STATUS = "Operation is working on an unsupported data type"  # what real logs say for a CUSTOM op
SUPPORTED = {"ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED",
             "LOGISTIC", "MAX_POOL_2D", "MEAN", "MUL", "PAD", "QUANTIZE", "RELU", "RELU6", "RESHAPE", "SOFTMAX"}
QUANTIZED = {schema.TensorType.INT8, schema.TensorType.UINT8, schema.TensorType.INT32}
_BUILTIN_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def op_name(model, op) -> str:
    """The name the compiler's table uses: the builtin's, and CUSTOM for every custom op (as real logs show)."""
    code = model.operatorCodes[op.opcodeIndex]
    return _BUILTIN_NAMES[max(code.builtinCode, code.deprecatedBuiltinCode)]


def read_flatbuffer(path: Path):
    data = path.read_bytes()
    # An appended zip (associated files) starts after the flatbuffer; the parser ignores trailing bytes.
    return flatbuffer_utils.read_model_from_bytearray(bytearray(data))


def not_quantized(model) -> bool:
    sub = model.subgraphs[0]
    return any(sub.tensors[i].type not in QUANTIZED for op in sub.operators for i in op.inputs if i >= 0
               if op_name(model, op) != "QUANTIZE")


def place(model) -> list[tuple[str, str]]:
    """(op, status) per op, in order: mapped up to the first unsupported op, then on the CPU."""
    rows, cut = [], False
    for op in model.subgraphs[0].operators:
        name = op_name(model, op)
        if not cut and name not in SUPPORTED:
            cut = True
            rows.append((name, CUSTOM_STATUS if name == "CUSTOM" else NOT_SUPPORTED))
        else:
            rows.append((name, AFTER_FIRST if cut else MAPPED))
    return rows


def compile_segment(model, mapped: int) -> None:
    """Replace the first ``mapped`` ops with one edgetpu-custom-op; drop metadata."""
    sub = model.subgraphs[0]
    model.metadata = None
    if mapped == 0:  # nothing maps: no Edge TPU subgraph, the ops stay as they are
        return
    segment, rest = sub.operators[:mapped], sub.operators[mapped:]
    produced = {t for op in segment for t in op.outputs}
    used_later = {t for op in rest for t in op.inputs} | set(sub.outputs)
    weights = {t for op in segment for t in op.inputs if t >= 0 and sub.tensors[t].buffer > 0}
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
    code.customCode, code.version = "edgetpu-custom-op", 1
    model.operatorCodes.append(code)
    custom = schema.OperatorT()
    custom.opcodeIndex = len(model.operatorCodes) - 1
    custom.inputs = [t for t in sub.inputs]
    custom.outputs = [t for t in sorted(produced) if t in used_later]
    # The compiled program and its parameters live in the custom options; the weights' buffers are emptied.
    custom.customOptions = list(b"fake edgetpu executable " + bytes(len(weights)))
    for t in weights:
        model.buffers[sub.tensors[t].buffer].data = None
    sub.operators = [custom, *rest]


def table(rows) -> list[str]:
    counted: list[list] = []
    for name, status in rows:  # the real table groups by (op, status); an op can appear twice
        for row in counted:
            if row[0] == name and row[2] == status:
                row[1] += 1
                break
        else:
            counted.append([name, 1, status])
    return ["Operator                       Count      Status", ""] + [
        f"{name:<30} {count:<10} {status}" for name, count, status in counted]


def main(argv: list[str]) -> int:
    args, out_dir, show_table = list(argv), Path("."), False
    if "-s" in args:
        args.remove("-s")
        show_table = True
    if "-o" in args:
        at = args.index("-o")
        out_dir = Path(args[at + 1])
        del args[at:at + 2]
    source = Path(args[-1])
    if os.environ.get("FAKE_EDGETPU_CALLS"):
        with open(os.environ["FAKE_EDGETPU_CALLS"], "a") as f:
            f.write(" ".join(argv) + "\n")
    print(f"Edge TPU Compiler version {VERSION}")
    model = read_flatbuffer(source)
    if not_quantized(model):
        print(f"Invalid model: {source}\nModel not quantized")
        return 1
    rows = place(model)
    mapped = next((i for i, (_, status) in enumerate(rows) if status != MAPPED), len(rows))
    compile_segment(model, mapped)
    target = out_dir / f"{source.stem}_edgetpu.tflite"
    log = out_dir / f"{source.stem}_edgetpu.log"
    data = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    target.write_bytes(data)
    log.write_text("\n".join([f"Edge TPU Compiler version {VERSION}", f"Input: {source}", f"Output: {target}", "",
                              *table(rows), ""]))
    lines = ["Started a compilation timeout timer of 180 seconds.", "", "Model compiled successfully in 12 ms.", "",
             f"Input model: {source}", f"Input size: {source.stat().st_size / 1024:.2f}KiB",
             f"Output model: {target}", f"Output size: {len(data) / 1024:.2f}KiB",
             f"Number of Edge TPU subgraphs: {1 if mapped else 0}", f"Total number of operations: {len(rows)}",
             f"Operation log: {log}", ""]
    if mapped < len(rows):
        lines += ["Model successfully compiled but not all operations are supported by the Edge TPU. A percentage "
                  "of the model will instead run on the CPU, which is slower. If possible, consider updating your "
                  "model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.",
                  f"Number of operations that will run on Edge TPU: {mapped}",
                  f"Number of operations that will run on CPU: {len(rows) - mapped}", ""]
    else:
        lines += ["See the operation log file for individual operation details."]
    if show_table:
        lines += [*table(rows), ""]
    lines += ["Compilation child process completed within timeout period.", "Compilation succeeded!"]
    print("\n".join(lines))
    return 0


def install(folder: Path) -> Path:
    """An executable ``folder/edgetpu_compiler`` that runs this module with this Python."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "edgetpu_compiler"
    script.write_text(f"#!/bin/sh\nexec {sys.executable} {Path(__file__).resolve()} \"$@\"\n")
    script.chmod(0o755)
    return script


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
