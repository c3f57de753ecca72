"""edgecnn export: every registered architecture in every --quantize mode loads back through the
device half with its metadata; int8 is full integer with the requested I/O types; the source
model is chosen and named; bad input gets a one-line error and leaves no file."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from optimize_helpers import copy_run, shared_arch_run, shared_digits, shared_export, shared_pqat_run

from edgecnn.cli import cli
from edgecnn.training.models.mobilenet import MODELS  # importing it registers every architecture

pytestmark = pytest.mark.slow
MODES = ("none", "fp16", "dynamic", "int8")
# Named for the source model (these runs are unpruned, without QAT) and the mode.
FILE_NAMES = {"none": "model_float_fp32.tflite", "fp16": "model_float_fp16.tflite",
              "dynamic": "model_float_dynamic.tflite", "int8": "model_float_int8.tflite"}


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_every_architecture_exports_and_loads_on_the_device_half(tmp_path_factory, architecture, mode):
    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.runtime.preprocess import prepare_image, read_image
    from edgecnn.tflite.metadata import read_metadata, verify_content_hash

    run = shared_arch_run(tmp_path_factory, architecture)
    result = shared_export(tmp_path_factory, architecture, mode)
    assert result.path == run / FILE_NAMES[mode] and result.path.is_file()
    assert result.size_bytes == result.path.stat().st_size and 0 < result.gzip_bytes < result.size_bytes

    md = read_metadata(result.path)
    assert md.labels == (run / "labels.txt").read_text().split()
    assert (md.height, md.width, md.channels, md.channel_order) == (16, 16, 3, "RGB")
    assert md.mean == [127.5] * 3 and md.std == [127.5] * 3 and md.resize == "area"
    assert md.model_name == architecture and md.recipe["model"]["architecture"] == architecture
    assert md.quantization == mode and md.quantization_source == ("ptq" if mode == "int8" else "float")
    assert md.target == "cpu" and md.edgecnn_version
    assert verify_content_hash(result.path.read_bytes(), md)

    classifier = TFLiteClassifier(result.path, threads=1)
    assert classifier.labels == md.labels
    images = sorted(shared_digits(tmp_path_factory).rglob("*.png"))[:3]
    batch = np.stack([prepare_image(read_image(p), classifier.spec) for p in images])
    scores = classifier.predict(batch)
    assert scores.shape == (3, len(md.labels))
    # Softmax outputs: probabilities summing to 1 (int8 outputs are multiples of 1/256).
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=0.02 if mode == "int8" else 1e-3)


@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_float_export_computes_what_the_keras_model_computes(tmp_path_factory, architecture):
    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.runtime.preprocess import prepare_image, read_image
    from edgecnn.training.models.model_io import load_keras_model

    run = shared_arch_run(tmp_path_factory, architecture)
    classifier = TFLiteClassifier(shared_export(tmp_path_factory, architecture, "none").path, threads=1)
    images = sorted(shared_digits(tmp_path_factory).rglob("*.png"))[:4]
    batch = np.stack([prepare_image(read_image(p), classifier.spec) for p in images])
    expected = load_keras_model(run / "float.keras").predict_on_batch(batch)
    np.testing.assert_allclose(classifier.predict(batch), expected, atol=1e-5)


def test_int8_is_full_integer_with_int8_io(tmp_path_factory):
    from edgecnn.tflite.inspect import inspect_file

    result = shared_export(tmp_path_factory, "mobilenet_v1_tiny", "int8")
    info = inspect_file(result.path)
    assert info.float_tensors() == []
    assert {t.dtype for t in info.main.tensors if not t.constant} == {"int8"}
    assert result.checks["int8"]["full_integer"] is True
    assert result.calibration["source"].startswith("train split of") and result.calibration["samples"] > 0


@pytest.mark.parametrize("io", ["uint8", "float32"])
def test_int8_io_types_follow_the_option(tmp_path_factory, tmp_path, io):
    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.tflite.inspect import inspect_file

    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    out = tmp_path / f"io_{io}.tflite"
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "int8", "--io", io, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    info = inspect_file(out)
    assert [t.dtype for t in info.inputs] == [io] and [t.dtype for t in info.outputs] == [io]
    # float32 I/O only adds QUANTIZE at the input and DEQUANTIZE at the output: the inside stays int8.
    assert info.float_tensors() == []
    if io == "float32":
        assert info.op_histogram()["QUANTIZE"] == 1 and info.op_histogram()["DEQUANTIZE"] == 1
    assert json.loads(result.stdout)["io"] == io
    assert TFLiteClassifier(out, threads=1).input_dtype == io


def test_int8_without_qat_says_post_training_quantization(tmp_path_factory, tmp_path, tiny_run):
    run = copy_run(tiny_run.path, tmp_path / "run")
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "post-training quantization of float.keras, calibrated on" in result.stderr
    assert (run / "model_float_int8.tflite").is_file()


def test_pruning_shows_in_the_gzip_size(tmp_path_factory, tiny_run):
    # Zeros compress: the pruned run's float export gzips far better than the unpruned one.
    from edgecnn.training.export.exporter import ExportOptions, export

    pruned = shared_pqat_run(tmp_path_factory, tiny_run.path)
    dense = export(pruned, ExportOptions(quantize="none", start="float", out=pruned / "dense.tflite"), progress=False)
    sparse = export(pruned, ExportOptions(quantize="none", start="pruned", out=pruned / "sparse.tflite"), progress=False)
    assert sparse.quantization_source == "pruned" and dense.quantization_source == "float"
    assert abs(sparse.size_bytes - dense.size_bytes) < 0.01 * dense.size_bytes
    assert sparse.gzip_bytes < 0.8 * dense.gzip_bytes


def test_users_keras_model_with_calibration_folder(tmp_path_factory, tmp_path):
    from edgecnn.tflite.metadata import read_metadata
    from edgecnn.training.models.mobilenet import build_model
    from edgecnn.training.models.model_io import save_keras_model

    digits = shared_digits(tmp_path_factory)
    model_path = save_keras_model(build_model("mobilenet_v1_tiny", num_classes=4, size=16), tmp_path / "mine.keras")
    result = CliRunner().invoke(cli, ["export", str(model_path), "--quantize", "int8", "--calibration-data",
                                      str(digits), "--mean", "0", "--std", "255"])
    assert result.exit_code == 0, result.output
    md = read_metadata(tmp_path / "mine_int8.tflite")
    assert md.labels == ["0", "1", "2", "3"]  # the calibration folder's class names
    assert md.mean == [0.0] * 3 and md.std == [255.0] * 3 and md.quantization_source == "ptq"

    labels = tmp_path / "labels.txt"
    labels.write_text("zero\none\ntwo\nthree\n")
    result = CliRunner().invoke(cli, ["export", str(model_path), "--quantize", "fp16", "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert read_metadata(tmp_path / "mine_fp16.tflite").labels == ["zero", "one", "two", "three"]


def test_gpu_target_is_float16_and_checked(tmp_path_factory):
    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    result = CliRunner().invoke(cli, ["export", str(run), "--target", "gpu", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["quantize"] == "fp16" and report["path"].endswith("model_float_fp16_gpu.tflite")
    assert report["checks"]["gpu"]["compatible"] is True and report["checks"]["gpu"]["unsupported_ops"] == []


def test_failed_post_check_keeps_no_file(tmp_path_factory, tmp_path):
    # The parity gate's hook: it sees the finished file at a temporary path; raising refuses the export.
    from edgecnn.errors import GateFailed
    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.training.export.exporter import ExportOptions, export

    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    out = tmp_path / "gated.tflite"
    seen = {}

    def gate(result, candidate):
        seen["path"], seen["destination"] = candidate, result.path
        seen["labels"] = TFLiteClassifier(candidate, threads=1).labels
        seen["reference"] = result.reference_path
        raise GateFailed("top-1 disagreement 9% exceeds --max-disagreement 1%")

    with pytest.raises(GateFailed):
        export(run, ExportOptions(quantize="dynamic", out=out), post_check=gate, progress=False)
    assert seen["path"] != out and seen["path"].suffix == ".tflite" and seen["destination"] == out
    assert seen["reference"] == run / "float.keras" and len(seen["labels"]) == 4
    assert not out.exists() and not seen["path"].exists() and _leftovers(tmp_path) == []


# --- bad input -------------------------------------------------------------------------------------

def _fails(args, fragment: str, code: int = 2):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == code, result.output
    assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    return result


def test_run_without_trained_model(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "recipe.yaml").write_text("model: {}\n")
    _fails(["export", str(tmp_path / "run")], "has no float.keras; run 'edgecnn train")
    assert list((tmp_path / "run").iterdir()) == [tmp_path / "run" / "recipe.yaml"]


def test_keras3_model_is_refused_with_the_way_to_rebuild(tmp_path):
    import keras  # Keras 3, installed with TensorFlow 2.21

    if not keras.__version__.startswith("3"):
        pytest.skip("needs Keras 3")
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(2)])
    model.save(tmp_path / "k3.keras")
    _fails(["export", str(tmp_path / "k3.keras"), "--quantize", "fp16"], "tf_keras")
    assert not (tmp_path / "k3_fp16.tflite").exists()


def test_lambda_layer_is_refused_without_running_it(tmp_path):
    from edgecnn.training.keras_compat import keras

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    model.save(tmp_path / "lambda.keras")
    _fails(["export", str(tmp_path / "lambda.keras")], "contains a Lambda layer")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "lambda_fp32.tflite").exists()


def test_custom_layer_is_refused(tmp_path):
    from edgecnn.training.keras_compat import keras

    class Doubler(keras.layers.Layer):  # not registered: a model file cannot name code to run
        def call(self, x):
            return x * 2.0

    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(Doubler()(inputs))))
    model.save(tmp_path / "custom.keras")
    _fails(["export", str(tmp_path / "custom.keras")], "uses a layer or option tf_keras does not know")
    assert _leftovers(tmp_path) == [] and not (tmp_path / "custom_fp32.tflite").exists()


def test_calibration_classes_must_match_the_labels(tmp_path_factory, tmp_path):
    import shutil

    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    wrong = tmp_path / "wrong"
    for name in ("a", "b", "c", "d"):
        shutil.copytree(shared_digits(tmp_path_factory) / "0", wrong / name)
    _fails(["export", str(run), "--quantize", "int8", "--calibration-data", str(wrong), "--out",
            str(tmp_path / "x.tflite")], "has classes that do not match the model's labels")
    assert not (tmp_path / "x.tflite").exists()


def test_calibration_class_count_must_match_a_users_model(tmp_path_factory, tmp_path):
    import shutil

    from edgecnn.training.models.mobilenet import build_model
    from edgecnn.training.models.model_io import save_keras_model

    three = tmp_path / "three"
    for name in ("0", "1", "2"):
        shutil.copytree(shared_digits(tmp_path_factory) / name, three / name)
    model_path = save_keras_model(build_model("mobilenet_v1_tiny", num_classes=4, size=16), tmp_path / "m.keras")
    _fails(["export", str(model_path), "--quantize", "int8", "--calibration-data", str(three)],
           "has 3 class folders but the model has 4 outputs")


def test_calibration_images_far_too_small_are_refused(tmp_path_factory, tmp_path):
    import cv2

    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    tiny = tmp_path / "tiny"
    for label in (run / "labels.txt").read_text().split():
        (tiny / label).mkdir(parents=True)
        cv2.imwrite(str(tiny / label / "a.png"), np.full((2, 2, 3), 128, np.uint8))
    _fails(["export", str(run), "--quantize", "int8", "--calibration-data", str(tiny), "--out",
            str(tmp_path / "x.tflite")], "is 2x2, more than 4x smaller than the model's 16x16 input")


def test_users_model_int8_needs_calibration_data(tmp_path):
    from edgecnn.training.models.mobilenet import build_model
    from edgecnn.training.models.model_io import save_keras_model

    model_path = save_keras_model(build_model("mobilenet_v1_tiny", num_classes=2, size=16), tmp_path / "m.keras")
    _fails(["export", str(model_path), "--quantize", "int8"], "needs representative images: add --calibration-data")


def test_output_in_a_missing_folder(tmp_path_factory, tmp_path):
    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    _fails(["export", str(run), "--out", str(tmp_path / "nowhere" / "m.tflite")],
           f"folder {tmp_path / 'nowhere'} does not exist")
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--quantize", "fp16", "--io", "uint8"], "--io uint8 needs --quantize int8"),
    (["--target", "edgetpu", "--quantize", "fp16"], "--target edgetpu needs a full-integer model"),
    (["--target", "edgetpu", "--io", "float32"], "--target edgetpu needs integer input and output"),
    (["--target", "gpu", "--quantize", "dynamic"], "--target gpu runs float and full-integer models"),
    (["--quantize", "dynamic", "--from", "qat"], "--from qat converts only to --quantize int8"),
    (["--quantize", "int8", "--from", "qat"], "has no qat.keras; run 'edgecnn qat"),
    (["--mean", "1,2,x"], "give numbers separated by commas"),
])
def test_contradictory_options(tmp_path_factory, args, fragment):
    run = shared_arch_run(tmp_path_factory, "mobilenet_v1_tiny")
    _fails(["export", str(run), *args], fragment)


def test_not_a_keras_file(tmp_path):
    (tmp_path / "model.h5").write_bytes(b"\x89HDF")
    _fails(["export", str(tmp_path / "model.h5")], "is not a run directory or a .keras file")
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("junk.txt", "nothing")
    _fails(["export", str(broken)], "is not a valid .keras archive")


def test_keras_file_inside_a_run_uses_the_run_and_refuses_float_modes_for_qat(tmp_path_factory, tmp_path, tiny_run):
    from edgecnn.tflite.metadata import read_metadata

    run = shared_pqat_run(tmp_path_factory, tiny_run.path)
    _fails(["export", str(run / "qat.keras"), "--quantize", "fp16"], "is a QAT model: it converts only to --quantize int8")
    _fails(["export", str(run / "float.keras"), "--from", "qat"], "--from chooses among a run's models")
    out = tmp_path / "f.tflite"
    result = CliRunner().invoke(cli, ["export", str(run / "float.keras"), "--quantize", "fp16", "--out", str(out)])
    assert result.exit_code == 0, result.output
    md = read_metadata(out)
    assert md.quantization_source == "float" and md.labels == (run / "labels.txt").read_text().split()
