"""Quantization-aware training: prune-preserving QAT keeps the zeros, the QAT archive reloads
exactly, accuracy is recorded, and layers tfmot cannot quantize are named."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from optimize_helpers import shared_pqat_run

from edgecnn.cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_run):
    return shared_pqat_run(tmp_path_factory, tiny_run.path)


@pytest.fixture(scope="module")
def pqat(run):
    # `edgecnn qat RUN --preserve-sparsity --epochs 1 --json` on a run pruned to 50%.
    return json.loads((run / "qat_cli_stdout.json").read_text())


def test_preserve_sparsity_keeps_every_pruned_layer_sparse(pqat):
    before, after = pqat["sparsity"]["before"], pqat["sparsity"]["after"]
    pruned = [name for name, value in before.items() if value > 0.5]
    assert len(pruned) >= 3
    for name in pruned:
        assert after[name] == pytest.approx(before[name], abs=1e-9), name
    assert pqat["scheme"] == "prune_preserve_8bit" and pqat["start"] == "pruned.keras"


def test_qat_accuracy_is_recorded_on_the_test_split(run, pqat):
    accuracy = pqat["accuracy"]
    assert accuracy["split"] == "test" and accuracy["num_samples"] > 0
    # Measured with this module's procedure (the tiny run, prune 60% for 1 epoch at batch 64, QAT 1 epoch) on
    # data.seed 0 (the tiny run's), 1, 2: float 0.981, 0.937, 0.967; pruned start 0.844, 0.733, 0.848; after
    # QAT 0.922, 0.889, 0.915 (270 test images). Bounds under the worst seed; a QAT that broke the model lands
    # near chance (0.1), and QAT recovers most of what pruning lost.
    assert accuracy["float"] >= 0.90 and accuracy["start"] >= 0.65 and accuracy["qat"] >= 0.85, accuracy
    assert json.loads((run / "qat_report.json").read_text())["accuracy"] == accuracy


def test_qat_archive_reloads_the_same_model(run, pqat):
    # The reloaded QAT model predicts exactly what the trained one did: same test accuracy.
    from edgecnn.rundir import RunDir
    from edgecnn.training.data.run_inputs import input_spec
    from edgecnn.training.models.model_io import load_keras_model
    from edgecnn.training.optimize.finetune import accuracy, load_split
    from edgecnn.training.optimize.sparsity import sparsity_by_layer

    model = load_keras_model(run / "qat.keras")
    wrappers = {type(layer).__name__ for layer in model.layers}
    assert {"QuantizeLayer", "QuantizeWrapperV2"} <= wrappers
    images = load_split(RunDir(run), "test", input_spec(RunDir(run).load_recipe()))
    assert accuracy(model, images) == pqat["accuracy"]["qat"]
    assert sparsity_by_layer(model) == pytest.approx(pqat["sparsity"]["after"])


def test_qat_keras_is_not_a_plain_keras_file(run):
    # A loader that does not know the archive fails loudly instead of returning the start model.
    import zipfile

    with zipfile.ZipFile(run / "qat.keras") as archive:
        assert "config.json" not in archive.namelist()
        assert {"start.keras", "qat.json", "qat_weights.npz", "metadata.json"} <= set(archive.namelist())


def test_qat_model_exports_to_a_real_int8_graph(run, pqat, tmp_path):
    # `edgecnn export RUN --quantize int8` picks qat.keras and says so; the QAT ranges become a
    # full-integer graph: every tensor between the int8 input and output is int8 (int32 only for
    # constant biases), and the pruned kernels stay sparse in the file.
    from edgecnn.tflite.inspect import inspect_file

    out = tmp_path / "qat_int8.tflite"
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "int8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "quantization-aware training ranges from qat.keras" in result.stderr
    assert "int8 from qat.keras (pruned+qat)" in result.stdout
    info = inspect_file(out)
    assert [t.dtype for t in info.inputs] == ["int8"] and [t.dtype for t in info.outputs] == ["int8"]
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"} <= set(info.op_histogram())
    assert info.float_tensors() == []
    inside = {t.dtype for t in info.main.tensors if not t.constant}
    assert inside == {"int8"}
    assert info.metadata["quantization_source"] == "pruned+qat"


def test_default_scheme_loses_zeros_and_the_check_says_so():
    from edgecnn.errors import ModelError
    from edgecnn.training.optimize.qat import check_sparsity_kept

    check_sparsity_kept({"a": 0.5, "b": 0.0}, {"a": 0.5, "b": 0.0})
    with pytest.raises(ModelError, match="QAT lost the pruned zeros of 1 layer"):
        check_sparsity_kept({"a": 0.5, "b": 0.0}, {"a": 0.01, "b": 0.0})


def test_unsupported_layer_is_named_with_the_reason():
    from edgecnn.errors import ModelError
    from edgecnn.training.keras_compat import keras
    from edgecnn.training.models.model_io import quantize_for_training

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.LayerNormalization(name="norm")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(ModelError, match=r"cannot quantize layer 'norm' \(LayerNormalization\): tfmot's 8-bit scheme"):
        quantize_for_training(model)


def test_lambda_layer_is_refused_by_name():
    from edgecnn.errors import ModelError
    from edgecnn.training.keras_compat import keras
    from edgecnn.training.models.model_io import quantize_for_training

    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(ModelError, match="layer 'double' is a Lambda layer"):
        quantize_for_training(model)


def test_preserve_sparsity_needs_a_pruned_model(tmp_path, run):
    import shutil

    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("recipe.yaml", "labels.txt", "split.json", "float.keras"):
        shutil.copy(run / name, bare / name)
    result = CliRunner().invoke(cli, ["qat", str(bare), "--preserve-sparsity"])
    assert result.exit_code == 2
    assert "has no pruned.keras; run 'edgecnn prune" in result.output
    assert not (bare / "qat.keras").exists()


def test_preserve_sparsity_from_float_is_contradictory(run):
    result = CliRunner().invoke(cli, ["qat", str(run), "--preserve-sparsity", "--from", "float"])
    assert result.exit_code == 2
    assert "--preserve-sparsity keeps a pruned model's zeros" in result.output
