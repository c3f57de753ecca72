"""The static GPU rules: quantized int8 graphs pass (measured on LiteRT's accelerator, see
tests/training/export/test_gpu_on_swiftshader.py), unquantized integer arithmetic and unknown ops do not."""

from ai_edge_litert import schema_py_generated as schema
from tflite_models import _GraphBuilder, build_classifier

from edgecnn.tflite.gpu_rules import check_model, format_report
from edgecnn.tflite.inspect import inspect_bytes


def _one_op(dtype, builtin=schema.BuiltinOperator.ADD) -> bytes:
    builder = _GraphBuilder()
    x = builder.tensor("x", [1, 4], dtype)
    y = builder.tensor("y", [1, 4], dtype)
    builder.op(builtin, [x, x], [y], schema.BuiltinOptions.AddOptions, schema.AddOptionsT())
    return builder.finish([x], [y])


def test_float_and_quantized_int8_classifiers_run_on_the_gpu():
    for kind in ("float", "int8"):
        report = check_model(inspect_bytes(build_classifier(kind=kind)))
        assert report.compatible and report.unsupported_ops == [], kind


def test_unquantized_integer_arithmetic_is_refused():
    report = check_model(inspect_bytes(_one_op(schema.TensorType.INT32)))
    assert not report.compatible
    assert report.unsupported_ops[0]["op"] == "ADD" and "computes on int32 tensor 'x'" in report.unsupported_ops[0]["reason"]
    assert "1 operation(s) would fall back to the CPU" in format_report(report)


def test_ops_the_delegate_lacks_are_named():
    report = check_model(inspect_bytes(_one_op(schema.TensorType.FLOAT32, schema.BuiltinOperator.CUMSUM)))
    assert report.unsupported_ops == [{"index": 0, "op": "CUMSUM", "reason": "CUMSUM is not implemented by the GPU delegate"}]
    assert report.compatible is False
