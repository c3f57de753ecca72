"""edgecnn inspect: tensors (shape, numpy dtype, scale/zero point), op histogram, metadata and size
of any .tflite, including one edgecnn did not make (two inputs, two outputs, no metadata);
corrupt files get a one-line error; TensorFlow is never imported."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from tflite_models import INPUT_SCALE, build_classifier, write_model

from edgecnn.cli import cli


def _inspect_json(path, *extra):
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_int8_model_with_metadata(tmp_path):
    path = write_model(tmp_path / "int8.tflite", kind="int8", labels=("cat", "dog", "fox"))
    info = _inspect_json(path)
    assert info["size_bytes"] == path.stat().st_size
    (inp,) = info["inputs"]
    assert inp["shape"] == [1, 8, 8, 3] and inp["dtype"] == "int8"
    assert inp["quantization"] == {"scale": pytest.approx(INPUT_SCALE), "zero_point": 0}
    (out,) = info["outputs"]
    assert out["shape"] == [1, 3] and out["dtype"] == "int8"
    assert out["quantization"] == {"scale": pytest.approx(1 / 256), "zero_point": -128}
    assert info["ops"] == {"AVERAGE_POOL_2D": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    assert info["metadata"]["labels"] == ["cat", "dog", "fox"]
    assert info["metadata"]["height"] == 8 and info["metadata"]["channel_order"] == "RGB"
    assert info["float_tensors"] == []


def test_float_model_without_metadata(tmp_path):
    path = tmp_path / "float.tflite"
    path.write_bytes(build_classifier(height=12, width=10, classes=5))
    info = _inspect_json(path)
    assert info["inputs"][0]["shape"] == [1, 12, 10, 3] and info["inputs"][0]["dtype"] == "float32"
    assert info["inputs"][0]["quantization"] == {"scale": 0.0, "zero_point": 0}
    assert info["outputs"][0]["shape"] == [1, 5]
    assert info["metadata"] is None
    assert "pooled" in info["float_tensors"]


def test_text_output_names_labels_and_integer_graph(tmp_path):
    path = write_model(tmp_path / "int8.tflite", kind="int8", labels=("cat", "dog", "fox"))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "1x8x8x3 int8 (scale 0.00784314, zero point 0)" in result.output
    assert "labels: cat, dog, fox" in result.output
    assert "(full integer)" in result.output


@pytest.fixture(scope="module")
def foreign_model(tmp_path_factory):
    """A model edgecnn did not make: converted straight from tf.function, two inputs, two outputs."""
    from edgecnn.training.keras_compat import tf

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32, name="a"),
                                  tf.TensorSpec([1, 6], tf.float32, name="b")])
    def two_heads(a, b):
        joined = tf.concat([a * 2.0, b], axis=1)
        return {"sum": tf.reduce_sum(joined, axis=1), "scaled": tf.nn.relu(joined - 1.0)}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([two_heads.get_concrete_function()], two_heads)
    path = tmp_path_factory.mktemp("foreign") / "two_heads.tflite"
    path.write_bytes(converter.convert())
    return path


def test_model_with_two_inputs_and_two_outputs(foreign_model):
    info = _inspect_json(foreign_model)
    assert sorted(t["shape"] for t in info["inputs"]) == [[1, 4], [1, 6]]
    assert sorted(t["shape"] for t in info["outputs"]) == [[1], [1, 10]]
    assert all(t["dtype"] == "float32" for t in info["inputs"] + info["outputs"])
    assert {"CONCATENATION", "SUM"} <= set(info["ops"])
    assert info["metadata"] is None and "min_runtime_version" in info["metadata_entries"]
    assert info["size_bytes"] == foreign_model.stat().st_size
    report = _inspect_json(foreign_model, "--target", "edgetpu")["edgetpu"]
    assert report["compatible"] is False and report["unsupported_ops"]


def test_edgetpu_section_in_json(tmp_path):
    int8 = write_model(tmp_path / "int8.tflite", kind="int8")
    report = _inspect_json(int8, "--target", "edgetpu")["edgetpu"]
    assert report["compatible"] is True and report["unsupported_ops"] == []
    assert report["operations"] == {"edgetpu": 3, "cpu": 0}

    float_model = write_model(tmp_path / "float.tflite", kind="float")
    report = _inspect_json(float_model, "--target", "edgetpu")["edgetpu"]
    assert report["compatible"] is False
    assert report["unsupported_ops"][0]["reason"].startswith("Operation is working on an unsupported data type")


def test_gpu_section_in_json(tmp_path):
    report = _inspect_json(write_model(tmp_path / "float.tflite"), "--target", "gpu")["gpu"]
    assert report["compatible"] is True
    report = _inspect_json(write_model(tmp_path / "int8.tflite", kind="int8"), "--target", "gpu")["gpu"]
    assert report["compatible"] is True  # quantized int8 runs on LiteRT 2.3's accelerator (tests/runtime/test_gpu.py)


@pytest.mark.parametrize("content, fragment", [
    (b"", "is not a TFLite model"),
    (b"this is not a model at all", "is not a TFLite model"),
])
def test_not_a_model(tmp_path, content, fragment):
    path = tmp_path / "bad.tflite"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2 and fragment in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_truncated_model(tmp_path):
    data = build_classifier(kind="int8")
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert result.exit_code == 2 and "corrupt or truncated" in result.output
    assert result.stdout == ""


def test_every_truncation_is_a_one_line_error():
    from edgecnn.errors import ModelError
    from edgecnn.tflite.inspect import inspect_bytes

    data = build_classifier(kind="int8")
    for cut in range(0, len(data) - 1, 7):
        with pytest.raises(ModelError):
            inspect_bytes(data[:cut])


def test_missing_file(tmp_path):
    result = CliRunner().invoke(cli, ["inspect", str(tmp_path / "none.tflite")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_inspect_never_imports_tensorflow(tmp_path):
    path = write_model(tmp_path / "int8.tflite", kind="int8")
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from edgecnn.cli import cli\n"
        f"r = CliRunner().invoke(cli, ['inspect', {str(path)!r}, '--target', 'edgetpu', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "r = CliRunner().invoke(cli, ['inspect', {0!r}, '--target', 'gpu'])\n".format(str(path)) +
        "assert r.exit_code == 0, r.output\n"
        "print('tensorflow' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_large_constant_values_are_not_listed(tmp_path):
    # Only small integer constants (axes, paddings) carry values; weights never do.
    from edgecnn.tflite.inspect import inspect_file

    info = inspect_file(write_model(tmp_path / "int8.tflite", kind="int8"))
    weights = next(t for t in info.main.tensors if t.name == "weights")
    assert weights.constant and weights.values is None
    assert np.dtype(weights.dtype) == np.int8
