"""The Edge TPU check: every registered architecture's int8 export maps completely; the rules
(int8 only, static shapes, batch 1, op limitations, first-unsupported-op-onward-on-CPU) catch
what they should; the compiler's log is parsed; without the compiler the export still succeeds."""

from __future__ import annotations

import json
import os
import textwrap

import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils
from click.testing import CliRunner
from optimize_helpers import shared_arch_run, shared_export
import fake_edgetpu_compiler
from tflite_models import build_classifier, write_model

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


# More layouts of the real compiler's output, as published in google-coral/edgetpu issues (paraphrased to the
# same format; op counts changed). Every op maps, stdout of -s (the summary lines then the table):
ALL_MAPPED_OUTPUT = textwrap.dedent("""\
    Edge TPU Compiler version 16.0.384591198
    Started a compilation timeout timer of 180 seconds.

    Model compiled successfully in 1155 ms.

    Input model: mobilenet_v2_1.0_224_quant.tflite
    Input size: 3.39MiB
    Output model: mobilenet_v2_1.0_224_quant_edgetpu.tflite
    Output size: 3.99MiB
    On-chip memory used for caching model parameters: 3.79MiB
    On-chip memory remaining for caching model parameters: 3.04MiB
    Off-chip memory used for streaming uncached model parameters: 0.00B
    Number of Edge TPU subgraphs: 1
    Total number of operations: 72
    Operation log: mobilenet_v2_1.0_224_quant_edgetpu.log
    See the operation log file for individual operation details.

    Operator                       Count      Status

    ADD                            10         Mapped to Edge TPU
    AVERAGE_POOL_2D                1          Mapped to Edge TPU
    CONV_2D                        36         Mapped to Edge TPU
    DEPTHWISE_CONV_2D              17         Mapped to Edge TPU
    FULLY_CONNECTED                1          Mapped to Edge TPU
    QUANTIZE                       1          Mapped to Edge TPU
    RESHAPE                        5          Mapped to Edge TPU
    SOFTMAX                        1          Mapped to Edge TPU
    Compilation child process completed within timeout period.
    Compilation succeeded!
    """)
# The _edgetpu.log file: version, Input/Output, the table; the same op twice with two statuses, and ops that
# are supported but pushed to the CPU by an earlier unsupported one (google-coral/edgetpu #342, #461).
LOG_FILE_PARTIAL = textwrap.dedent("""\
    Edge TPU Compiler version 16.0.384591198
    Input: detector.tflite
    Output: detector_edgetpu.tflite

    Operator                       Count      Status

    PAD                            1          Mapped to Edge TPU
    PAD                            3          More than one subgraph is not supported
    QUANTIZE                       1          Mapped to Edge TPU
    TRANSPOSE                      2          Operation not supported
    CONV_2D                        4          More than one subgraph is not supported
    """)
# Nothing maps (a model with float weights compiled for an old runtime; google-coral/edgetpu #222).
NONE_MAPPED_OUTPUT = textwrap.dedent("""\
    Edge TPU Compiler version 14.1.317412892

    Model compiled successfully in 98 ms.

    Input model: keras_model.tflite
    Output model: keras_model_edgetpu.tflite
    Number of Edge TPU subgraphs: 0
    Total number of operations: 74
    Operation log: keras_model_edgetpu.log

    Model successfully compiled but not all operations are supported by the Edge TPU. A percentage of the model will instead run on the CPU, which is slower. If possible, consider updating your model to use only operations supported by the Edge TPU. For details, visit g.co/coral/model-reqs.
    Number of operations that will run on Edge TPU: 0
    Number of operations that will run on CPU: 74

    Operator                       Count      Status

    CONV_2D                        70         Operation is working on an unsupported data type
    TRANSPOSE_CONV                 4          Operation is working on an unsupported data type
    """)


def test_compiler_log_layouts_all_mapped_log_file_and_none_mapped():
    log = edgetpu.parse_compiler_log(ALL_MAPPED_OUTPUT)
    assert (log.version, log.on_edgetpu, log.on_cpu) == ("16.0.384591198", None, None)
    assert len(log.ops) == 8 and log.ops[-1] == ("SOFTMAX", 1, edgetpu_report.MAPPED)  # the trailer is not a row
    report = compiler.report_from_compiler(log)
    assert report.compatible and report.counts() == {"edgetpu": 72, "cpu": 0} and report.unsupported_ops == []

    report = compiler.report_from_compiler(edgetpu.parse_compiler_log(LOG_FILE_PARTIAL))
    assert not report.compatible and report.counts() == {"edgetpu": 2, "cpu": 9}
    # Ops the compiler only pushed to the CPU are not reported as unsupported, and the first unsupported op is
    # the cause (TRANSPOSE), though the compiler's table lists a pushed PAD before it.
    assert [p.op for p in report.unsupported_ops] == ["TRANSPOSE", "TRANSPOSE"]
    assert report.first_unsupported.op == "TRANSPOSE"
    assert "first unsupported: #5 TRANSPOSE: Operation not supported" in edgetpu_report.format_report(report)

    log = edgetpu.parse_compiler_log(NONE_MAPPED_OUTPUT)
    assert (log.version, log.on_edgetpu, log.on_cpu) == ("14.1.317412892", 0, 74)
    report = compiler.report_from_compiler(log)
    assert not report.compatible and report.counts() == {"edgetpu": 0, "cpu": 74}
    assert {p.status for p in report.unsupported_ops} == {"Operation is working on an unsupported data type"}


@pytest.fixture
def stand_in_compiler(tmp_path):
    return fake_edgetpu_compiler.install(tmp_path / "bin")


def test_compiled_file_is_what_the_real_compiler_writes(tmp_path, stand_in_compiler):
    """The stand-in itself: one edgetpu-custom-op for the mapped ops, metadata gone, its own log."""
    from edgecnn.runtime.interpreter import custom_op_names
    from edgecnn.tflite.metadata import read_metadata

    model = write_model(tmp_path / "m.tflite", kind="int8")
    report = edgetpu.compile_for_edgetpu(model, compiler=str(stand_in_compiler))
    compiled = tmp_path / "m_edgetpu.tflite"
    assert report.compiled_path == str(compiled) and report.compiler_log == str(tmp_path / "m_edgetpu.log")
    assert report.compatible and report.source == f"edgetpu_compiler {fake_edgetpu_compiler.VERSION}"
    assert [p.op for p in report.ops] == ["AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert [op.name for op in inspect_file(compiled).main.operators] == [rules.EDGETPU_CUSTOM_OP]
    assert custom_op_names(compiled.read_bytes()) == {rules.EDGETPU_CUSTOM_OP}
    assert read_metadata(model).labels == ["red", "green", "blue"] and read_metadata(compiled) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "m.tflite", "m_edgetpu.log", "m_edgetpu.tflite"]


def test_partly_mapped_model_keeps_the_rest_on_the_cpu(tmp_path, stand_in_compiler):
    model = tmp_path / "m.tflite"
    model.write_bytes(build_classifier(kind="int8", custom_op="MyPostprocess"))
    report = edgetpu.compile_for_edgetpu(model, compiler=str(stand_in_compiler))
    assert not report.compatible and report.counts() == {"edgetpu": 3, "cpu": 1}
    assert [(p.op, p.status) for p in report.unsupported_ops] == [("CUSTOM", fake_edgetpu_compiler.CUSTOM_STATUS)]
    assert [op.name for op in inspect_file(tmp_path / "m_edgetpu.tflite").main.operators] == [rules.EDGETPU_CUSTOM_OP,
                                                                                  "MyPostprocess"]


@pytest.mark.slow
def test_export_runs_the_compiler_when_installed(tmp_path_factory, tmp_path, monkeypatch):
    from edgecnn.runtime.interpreter import custom_op_names
    from edgecnn.tflite.described import read_standard
    from edgecnn.tflite.metadata import read_metadata

    monkeypatch.setenv("PATH", f"{fake_edgetpu_compiler.install(tmp_path / 'bin').parent}{os.pathsep}{os.environ['PATH']}")
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
    # The compiler dropped the metadata (the stand-in does, as the real one does); the export embedded it again,
    # with the labels file and the standard entry that other runtimes read.
    assert custom_op_names(compiled.read_bytes()) == {rules.EDGETPU_CUSTOM_OP}
    source, again = read_metadata(out), read_metadata(compiled)
    assert source.quantization == "int8" and again is not None and again.target == "edgetpu"
    assert again.labels == source.labels and (again.height, again.width) == (source.height, source.width)
    assert (again.mean, again.std, again.channel_order) == (source.mean, source.std, source.channel_order)
    assert read_standard(compiled.read_bytes()).labels == source.labels


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
    model.write_bytes(build_classifier(kind="float"))  # the real compiler: "Invalid model: m.tflite" / "Model not quantized"
    compiler = fake_edgetpu_compiler.install(tmp_path / "bin")
    with pytest.raises(ModelError, match="^edgetpu_compiler could not compile m.tflite: Model not quantized$"):
        edgetpu.compile_for_edgetpu(model, compiler=str(compiler))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "m.tflite"]


def test_missing_compiler_says_how_to_get_it(tmp_path, monkeypatch):
    from edgecnn.errors import RuntimeUnavailable

    monkeypatch.setattr(compiler.shutil, "which", lambda name: None)
    assert edgetpu.find_edgetpu_compiler() is None
    with pytest.raises(RuntimeUnavailable, match="edgetpu_compiler"):
        edgetpu.compile_for_edgetpu(tmp_path / "m.tflite")
