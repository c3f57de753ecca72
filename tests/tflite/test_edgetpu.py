"""The Edge TPU check: every registered architecture's int8 export maps completely; the rules
(int8 only, static shapes, batch 1, op limitations, first-unsupported-op-onward-on-CPU) catch
what they should; the compiler's log is parsed; without the compiler the export still succeeds."""

from __future__ import annotations

import json
import os
import stat
import textwrap

import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils
from click.testing import CliRunner
from optimize_helpers import shared_arch_run, shared_export
from tflite_models import build_classifier

from edgecnn.cli import cli
from edgecnn.tflite import edgetpu
from edgecnn.tflite.edgetpu import compiler, rules
from edgecnn.tflite.edgetpu import report as edgetpu_report
from edgecnn.tflite.inspect import inspect_bytes, inspect_file
from edgecnn.training.models.mobilenet import MODELS  # importing it registers every architecture


@pytest.mark.slow
@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_every_architecture_int8_export_maps_entirely_to_the_edgetpu(tmp_path_factory, architecture):
    result = shared_export(tmp_path_factory, architecture, "int8")
    report = edgetpu.check_model(inspect_file(result.path))
    assert report.problems == []
    assert [p for p in report.ops if not p.on_edgetpu] == []
    assert report.compatible and report.counts()["cpu"] == 0
    assert {p.op for p in report.ops} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"}


# --- the rules, on small graphs built without TensorFlow ------------------------------------------

def _edit(data: bytes, change) -> bytes:
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    change(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_int8_classifier_is_compatible():
    report = edgetpu.check_model(inspect_bytes(build_classifier(kind="int8")))
    assert report.compatible and [p.op for p in report.ops] == ["AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"]


def test_float_model_is_not():
    report = edgetpu.check_model(inspect_bytes(build_classifier(kind="float")))
    assert not report.compatible
    assert any("is float32; the Edge TPU takes int8 or uint8" in p for p in report.problems)
    assert report.unsupported_ops[0].status.startswith(rules.UNSUPPORTED_TYPE)


def test_batch_other_than_one_is_a_problem():
    report = edgetpu.check_model(inspect_bytes(build_classifier(kind="int8", batch=2)))
    assert not report.compatible and any("has batch 2; the Edge TPU runs batch 1" in p for p in report.problems)


def test_dynamic_shape_is_a_problem():
    def dynamic_batch(model):
        model.subgraphs[0].tensors[0].shapeSignature = [-1, 8, 8, 3]

    report = edgetpu.check_model(inspect_bytes(_edit(build_classifier(kind="int8"), dynamic_batch)))
    assert not report.compatible and any("dynamic shape" in p for p in report.problems)


def test_everything_after_the_first_unsupported_op_runs_on_the_cpu():
    # Turn the first op into L2_POOL_2D (not in the Edge TPU table): the FC and softmax after it
    # are supported, but the compiler partitions once, so they run on the CPU too.
    def l2_pool(model):
        code = model.operatorCodes[model.subgraphs[0].operators[0].opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.L2_POOL_2D

    report = edgetpu.check_model(inspect_bytes(_edit(build_classifier(kind="int8"), l2_pool)))
    assert not report.compatible
    assert [(p.op, p.on_edgetpu) for p in report.ops] == [("L2_POOL_2D", False), ("FULLY_CONNECTED", False),
                                                           ("SOFTMAX", False)]
    assert [p.op for p in report.unsupported_ops] == ["L2_POOL_2D"]
    assert report.ops[1].status == rules.AFTER_FIRST_UNSUPPORTED.format(first="#0 L2_POOL_2D")
    assert report.to_dict()["unsupported_ops"] == [{"index": 0, "op": "L2_POOL_2D", "reason": rules.UNSUPPORTED_OP}]


def test_unknown_custom_op_at_the_end():
    report = edgetpu.check_model(inspect_bytes(build_classifier(kind="int8", custom_op="MyPostprocess")))
    assert [p.op for p in report.unsupported_ops] == ["MyPostprocess"]
    assert [p.on_edgetpu for p in report.ops] == [True, True, True, False]


def test_fused_activation_on_pooling_is_not_mapped():
    def relu_pool(model):
        model.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = schema.ActivationFunctionType.RELU

    report = edgetpu.check_model(inspect_bytes(_edit(build_classifier(kind="int8"), relu_pool)))
    assert report.unsupported_ops[0].status == "fused activation RELU is not supported on AVERAGE_POOL_2D"


def test_fully_connected_output_must_be_one_dimensional():
    def two_d_logits(model):
        sub = model.subgraphs[0]
        for index in sub.operators[2].inputs:
            sub.tensors[index].shape = [1, 2, 3]

    report = edgetpu.check_model(inspect_bytes(_edit(build_classifier(kind="int8"), two_d_logits)))
    assert report.unsupported_ops[0].op == "FULLY_CONNECTED"
    assert report.unsupported_ops[0].status == "output shape [1, 2, 3] is not one-dimensional"


def test_softmax_over_more_than_16000_classes_is_not_mapped():
    report = edgetpu.check_model(inspect_bytes(build_classifier(kind="int8", classes=16001)))
    assert [(p.op, p.status) for p in report.unsupported_ops] == [("SOFTMAX", "16,001 elements; at most 16,000")]


def test_compiled_model_segment_counts_as_edgetpu():
    report = edgetpu.check_model(inspect_bytes(build_classifier(kind="int8", custom_op=rules.EDGETPU_CUSTOM_OP)))
    assert report.ops[-1].op == rules.EDGETPU_CUSTOM_OP and report.ops[-1].on_edgetpu


# --- the compiler ------------------------------------------------------------------------------------

COMPILER_OUTPUT = textwrap.dedent("""\
    Edge TPU Compiler version 16.0.384591198
    Started a compilation timeout timer of 180 seconds.

    Model compiled successfully in 412 ms.

    Input model: model_int8.tflite
    Input size: 131.00KiB
    Output model: model_int8_edgetpu.tflite
    Output size: 190.12KiB
    On-chip memory used for caching model parameters: 160.25KiB
    On-chip memory remaining for caching model parameters: 7.75MiB
    Off-chip memory used for streaming uncached model parameters: 0.00B
    Number of Edge TPU subgraphs: 1
    Total number of operations: 20
    Operation log: model_int8_edgetpu.log

    Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
    Number of operations that will run on Edge TPU: 18
    Number of operations that will run on CPU: 2

    Operator                       Count      Status

    DEPTHWISE_CONV_2D              7          Mapped to Edge TPU
    CONV_2D                        8          Mapped to Edge TPU
    MEAN                           1          Mapped to Edge TPU
    FULLY_CONNECTED                1          Mapped to Edge TPU
    SOFTMAX                        1          Mapped to Edge TPU
    QUANTIZE                       1          Operation is otherwise supported, but not mapped due to some unspecified limitation
    DEQUANTIZE                     1          Operation is working on an unsupported data type
    """)


def test_compiler_log_is_parsed_into_the_same_report():
    log = edgetpu.parse_compiler_log(COMPILER_OUTPUT)
    assert log.version == "16.0.384591198" and (log.on_edgetpu, log.on_cpu) == (18, 2)
    assert log.ops[0] == ("DEPTHWISE_CONV_2D", 7, edgetpu_report.MAPPED) and len(log.ops) == 7
    report = compiler.report_from_compiler(log)
    assert not report.compatible and report.counts() == {"edgetpu": 18, "cpu": 2}
    assert [p.op for p in report.unsupported_ops] == ["QUANTIZE", "DEQUANTIZE"]
    assert report.to_dict()["unsupported_ops"][1]["reason"] == "Operation is working on an unsupported data type"
    assert report.source == "edgetpu_compiler 16.0.384591198"


def _fake_compiler(folder, *, fail: bool = False):
    """An executable named edgetpu_compiler that behaves like the real one (-s -o DIR MODEL)."""
    folder.mkdir(exist_ok=True)
    script = folder / "edgetpu_compiler"
    body = "echo 'ERROR: Model not quantized' >&2; exit 1" if fail else textwrap.dedent("""\
        stem=$(basename "$4" .tflite)
        cp "$4" "$3/${stem}_edgetpu.tflite"
        cat > "$3/${stem}_edgetpu.log" <<'LOG'
        Edge TPU Compiler version 16.0.384591198
        Operator                       Count      Status

        CONV_2D                        8          Mapped to Edge TPU
        DEPTHWISE_CONV_2D              7          Mapped to Edge TPU
        MEAN                           1          Mapped to Edge TPU
        FULLY_CONNECTED                1          Mapped to Edge TPU
        SOFTMAX                        1          Mapped to Edge TPU
        LOG
        echo 'Edge TPU Compiler version 16.0.384591198'
        echo 'Model compiled successfully in 10 ms.'
        """)
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


@pytest.mark.slow
def test_export_runs_the_compiler_when_installed(tmp_path_factory, tmp_path, monkeypatch):
    from edgecnn.tflite.metadata import read_metadata

    monkeypatch.setenv("PATH", f"{_fake_compiler(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    out = tmp_path / "model_int8.tflite"
    result = CliRunner().invoke(cli, ["export", str(run), "--target", "edgetpu", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    compiled = tmp_path / "model_int8_edgetpu.tflite"
    assert report["compiled_path"] == str(compiled) and compiled.is_file()
    assert (tmp_path / "model_int8_edgetpu.log").is_file()
    assert report["checks"]["edgetpu_compiler"]["compatible"] is True
    assert report["checks"]["edgetpu_compiler"]["source"] == "edgetpu_compiler 16.0.384591198"
    assert read_metadata(compiled).target == "edgetpu" and read_metadata(out).quantization == "int8"


@pytest.mark.slow
def test_export_without_compiler_still_writes_the_int8_model(tmp_path_factory, tmp_path, monkeypatch):
    monkeypatch.setattr(compiler.shutil, "which", lambda name: None)
    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    out = tmp_path / "model_int8.tflite"
    result = CliRunner().invoke(cli, ["export", str(run), "--target", "edgetpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and not (tmp_path / "model_int8_edgetpu.tflite").exists()
    assert "Edge TPU (edgecnn check): compatible: every operation maps to the Edge TPU" in result.output
    assert "edgetpu_compiler is not installed here" in result.output or "runs only on x86-64 Linux" in result.output
    assert "coral.ai" in result.output


def test_compiler_failure_is_one_line_and_leaves_nothing(tmp_path):
    from edgecnn.errors import ModelError

    model = tmp_path / "m.tflite"
    model.write_bytes(build_classifier(kind="int8"))
    compiler = _fake_compiler(tmp_path / "bin", fail=True) / "edgetpu_compiler"
    with pytest.raises(ModelError, match="edgetpu_compiler could not compile m.tflite: ERROR: Model not quantized"):
        edgetpu.compile_for_edgetpu(model, compiler=str(compiler))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "m.tflite"]


def test_missing_compiler_says_how_to_get_it(tmp_path, monkeypatch):
    from edgecnn.errors import RuntimeUnavailable

    monkeypatch.setattr(compiler.shutil, "which", lambda name: None)
    assert edgetpu.find_edgetpu_compiler() is None
    with pytest.raises(RuntimeUnavailable, match="edgetpu_compiler"):
        edgetpu.compile_for_edgetpu(tmp_path / "m.tflite")
