"""`edgecnn profile` and `edgecnn compare` through the CLI, on models edgecnn did and did not make."""

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from tflite_models import build_classifier, write_model

from edgecnn.cli import cli

FAST = ["--runs", "5", "--warmup", "1"]
REQUIRED_KEYS = ("init_ms", "first_invoke_ms", "peak_rss_mb", "threads", "runtime", "device")


@pytest.fixture(scope="session")
def foreign_model(tmp_path_factory):
    """A tf.lite-converted model edgecnn did not make: 2 inputs (float image, int32 vector),
    2 outputs, a dynamic batch dimension, no edgecnn metadata."""
    from edgecnn.training.keras_compat import tf

    conv = tf.Variable(tf.random.stateless_normal([3, 3, 3, 4], seed=[1, 2]))
    dense = tf.Variable(tf.random.stateless_normal([8, 5], seed=[3, 4]))

    @tf.function(input_signature=[tf.TensorSpec([None, 12, 12, 3], tf.float32, name="image"),
                                  tf.TensorSpec([None, 4], tf.int32, name="extra")])
    def model(image, extra):
        x = tf.nn.relu(tf.nn.conv2d(image, conv, strides=2, padding="SAME"))
        pooled = tf.reduce_mean(x, axis=[1, 2])
        features = tf.concat([pooled, tf.cast(extra, tf.float32)], axis=1)
        return {"scores": tf.nn.softmax(tf.matmul(features, dense)), "energy": tf.reduce_sum(x, axis=[1, 2, 3])}

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    path = tmp_path_factory.mktemp("foreign") / "foreign.tflite"
    path.write_bytes(converter.convert())
    return path


def _profile(*args):
    return CliRunner().invoke(cli, ["profile", *map(str, args)])


def test_profile_runs_on_a_model_edgecnn_did_not_make(foreign_model):
    result = _profile(foreign_model, "--threads", "1,2", *FAST, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout is nothing but the JSON
    inputs = {t["name"]: t for t in report["model"]["inputs"]}
    assert {t["dtype"] for t in inputs.values()} == {"float32", "int32"}
    assert sorted(t["shape"] for t in inputs.values()) == [[1, 4], [1, 12, 12, 3]]  # dynamic batch set to 1
    assert len(report["model"]["outputs"]) == 2
    assert report["model"]["edgecnn_metadata"] is False
    assert [row["threads"] for row in report["rows"]] == [1, 2]
    for row in [report, *report["rows"]]:
        assert set(row["latency_ms"]) >= {"p50", "p90", "p99", "mean"}
        assert row["latency_ms"]["p50"] > 0
    for key in REQUIRED_KEYS:
        assert report[key] is not None, key
    assert report["runtime"] == "ai_edge_litert"


def test_profile_table_and_out_file(tmp_path):
    model = write_model(tmp_path / "m.tflite", kind="int8")
    out = tmp_path / "pi.json"
    result = _profile(model, "--threads", "1", *FAST, "--out", out)
    assert result.exit_code == 0, result.output
    assert "threads  delegate  init ms" in result.stdout and "p50 ms" in result.stdout
    assert f"report written to {out}" in result.stderr  # progress goes to stderr
    saved = json.loads(out.read_text())
    assert saved["rows"][0]["runs"] == 5 and saved["model"]["quantization"] == "int8"


@pytest.mark.parametrize("args,message", [
    (["--threads", "0"], "Error: --threads values must be whole numbers >= 1, got 0; e.g. --threads 1,2,4"),
    (["--threads", "1,x"], "Error: --threads takes whole numbers >= 1 separated by commas, got '1,x'"),
    (["--runs", "0"], "Error: --runs must be a whole number >= 1, got 0"),
    (["--device", "pi9"], "Error: unknown device 'pi9'; known devices: coral-dev-board, coral-usb-on-pi, "
                          "raspberry-pi-4, raspberry-pi-5, x86-64-linux"),
    (["--delegate", "edgetpu"], "Error: Edge TPU delegate unavailable: libedgetpu.so.1 is not installed; "
                                "install the Edge TPU runtime"),
])
def test_profile_bad_options(tmp_path, args, message):
    model = write_model(tmp_path / "m.tflite")
    result = _profile(model, *FAST, *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_profile_refuses_an_unusable_out_before_measuring(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    result = _profile(model, *FAST, "--out", tmp_path / "no" / "r.json")
    assert result.exit_code == 2
    assert f"Error: cannot write --out {tmp_path / 'no' / 'r.json'}: folder {tmp_path / 'no'} does not exist" in result.output
    assert "profiling" not in result.output
    result = _profile(model, *FAST, "--out", tmp_path)
    assert result.exit_code == 2 and f"Error: --out {tmp_path} is a folder" in result.output


def test_profile_model_that_cannot_be_allocated(tmp_path):
    model = tmp_path / "custom.tflite"
    model.write_bytes(build_classifier(custom_op="NoSuchOp"))
    result = _profile(model, *FAST)
    assert result.exit_code == 2
    assert f"Error: {model} cannot be loaded by ai_edge_litert (Encountered unresolved custom op: NoSuchOp" in result.output


def test_profile_refuses_files_that_are_not_models(tmp_path):
    (tmp_path / "notes.tflite").write_text("not a model")
    result = _profile(tmp_path / "notes.tflite")
    assert result.exit_code == 2 and "is not a TFLite model (no 'TFL3' flatbuffer identifier)" in result.output
    result = _profile(tmp_path / "absent.tflite")
    assert result.exit_code == 2 and f"Error: model file {tmp_path / 'absent.tflite'} does not exist" in result.output


def _report(tmp_path, name, **model_kwargs):
    model = write_model(tmp_path / f"{name}.tflite", **model_kwargs)
    out = tmp_path / f"{name}.json"
    assert _profile(model, "--threads", "1", *FAST, "--out", out).exit_code == 0
    return out


def test_compare_tabulates_reports_of_the_same_model_without_warning(tmp_path):
    a = _report(tmp_path, "pi4")
    b = tmp_path / "laptop.json"
    # The same model measured "elsewhere": same content, twice as slow.
    data = json.loads(a.read_text())
    here = data["device"]
    data["device"] = "laptop"
    for row in [data, *data["rows"]]:
        row["latency_ms"] = {k: v * 2 for k, v in row["latency_ms"].items()}
    b.write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["compare", str(a), str(b), "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert table["warnings"] == []
    assert [(r["report"], r["device"]) for r in table["rows"]] == [("pi4.json", here), ("laptop.json", "laptop")]
    assert table["rows"][1]["speed_vs_first"] == 0.5
    text = CliRunner().invoke(cli, ["compare", str(a), str(b)])
    assert "report" in text.stdout.splitlines()[0] and "laptop.json" in text.stdout


def test_compare_warns_about_different_models_but_still_tabulates(tmp_path):
    a = _report(tmp_path, "float")
    b = _report(tmp_path, "int8", kind="int8")
    result = CliRunner().invoke(cli, ["compare", str(a), str(b)])
    assert result.exit_code == 0
    assert "warning: these reports measured 2 different models (by content hash)" in result.stderr
    assert "float.json" in result.stdout and "int8.json" in result.stdout


@pytest.mark.parametrize("content,message", [
    ("{", "is not valid JSON; give a report written by 'edgecnn profile --json'"),
    ('{"rows": []}', "has no latency_ms.p50, so it is not a profile report"),
    ("[1, 2]", "is not a profile report (a JSON object)"),
])
def test_compare_refuses_files_that_are_not_reports(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    result = CliRunner().invoke(cli, ["compare", str(bad)])
    assert result.exit_code == 2 and f"Error: {bad} {message}" in result.output


def test_device_commands_never_import_tensorflow(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    code = (
        "import sys, json\n"
        "from edgecnn.cli import cli\n"
        f"cli.main(['profile', {str(model)!r}, '--runs', '3', '--out', {str(tmp_path / 'r.json')!r}], standalone_mode=False)\n"
        f"cli.main(['compare', {str(tmp_path / 'r.json')!r}], standalone_mode=False)\n"
        "cli.main(['devices'], standalone_mode=False)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_representative_inputs_drive_the_model(foreign_model):
    """The filled inputs are valid for the model: invoking gives finite, normalized scores."""
    from edgecnn.runtime.interpreter import load_interpreter
    from edgecnn.runtime.profile.profiler import fix_dynamic_shapes, set_representative_inputs

    interpreter = load_interpreter(foreign_model, threads=1).interpreter
    fix_dynamic_shapes(interpreter)
    set_representative_inputs(interpreter, None, seed=3)
    interpreter.invoke()
    outputs = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    scores = next(v for v in outputs.values() if v.shape == (1, 5))
    assert np.isfinite(scores).all() and scores.sum() == pytest.approx(1.0, abs=1e-5)
