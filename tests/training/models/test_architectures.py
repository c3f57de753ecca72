"""The model registry: every registered model builds, runs, and uses only int8/Edge TPU-friendly layers."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import ModelError
from edgecnn.training.keras_compat import keras
from edgecnn.training.models.mobilenet import DEFAULT_MODEL, MODELS, build_model, model_stats

# Layers int8 TFLite and the Edge TPU run (BatchNormalization is folded by the converter).
ALLOWED_LAYERS = {"InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Add",
                  "GlobalAveragePooling2D", "Dropout", "Dense", "Activation"}


def test_default_model_is_registered():
    assert DEFAULT_MODEL in MODELS
    families = {spec.family for spec in MODELS.values()}
    assert {"mobilenet_v1", "mobilenet_v2"} <= families


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_and_runs(name):
    model = build_model(name, num_classes=3, size=16, channels=3)
    assert model.input_shape == (None, 16, 16, 3)
    assert model.output_shape == (None, 3)
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 16, 16, 3)).astype("float32")
    probs = model(images, training=False).numpy()
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert {type(layer).__name__ for layer in model.layers} <= ALLOWED_LAYERS
    for layer in model.layers:
        if isinstance(layer, keras.layers.ReLU):
            assert float(layer.max_value) == 6.0, layer.name
        if isinstance(layer, keras.layers.BatchNormalization):
            assert layer.momentum == pytest.approx(MODELS[name].bn_momentum)
        if isinstance(layer, keras.layers.Activation):
            assert layer.get_config()["activation"] == "softmax"
    params, macs = model_stats(model)
    assert params == model.count_params() and macs > 0


@pytest.mark.parametrize("size, final", [(8, 2), (16, 2), (32, 2), (96, 3), (224, 7)])
def test_downsampling_adapts_to_input_size(size, final):
    model = build_model(DEFAULT_MODEL, num_classes=2, size=size)
    assert model.get_layer("pool").input_shape[1:3] == (final, final)


def test_grayscale_input():
    model = build_model("mobilenet_v2_tiny", num_classes=4, size=32, channels=1)
    assert model.input_shape == (None, 32, 32, 1)
    assert model(np.zeros((1, 32, 32, 1), "float32")).shape == (1, 4)


def test_alpha_and_depth_change_the_model():
    base = model_stats(build_model("mobilenet_v1", num_classes=10, size=32, alpha=0.5))[0]
    wider = model_stats(build_model("mobilenet_v1", num_classes=10, size=32, alpha=1.0))[0]
    shallow = build_model("mobilenet_v1", num_classes=10, size=32, alpha=0.5, depth=0.5)
    assert wider > 2 * base
    assert model_stats(shallow)[0] < base
    assert sum(layer.name.endswith("_dw") for layer in shallow.layers) == 7  # 1+1+1+3+1 blocks


@pytest.mark.parametrize("name, params, macs", [
    # Keras' own MobileNet/MobileNetV2 at 224x224, 1000 classes: 4,253,864 and 3,538,984 parameters;
    # the papers give 569M and 300M multiply-adds.
    ("mobilenet_v1", 4_253_864, 569e6),
    ("mobilenet_v2", 3_538_984, 300e6),
])
def test_full_size_models_match_the_reference_designs(name, params, macs):
    got_params, got_macs = model_stats(build_model(name, num_classes=1000, size=224))
    assert got_params == params
    assert got_macs == pytest.approx(macs, rel=0.01)


def test_unknown_model_suggests_the_closest():
    with pytest.raises(ModelError, match=r"unknown model 'mobilenetv2' \(did you mean 'mobilenet_v2'\?\)"):
        build_model("mobilenetv2", num_classes=2, size=32)


@pytest.mark.parametrize("kwargs, message", [
    ({"alpha": 0}, "--alpha must be a positive number, got 0"),
    ({"depth": -1.0}, "--depth must be a positive number, got -1.0"),
    ({"num_classes": 1}, "a classifier needs at least 2 classes, got 1"),
    ({"channels": 4}, "channels must be 1 (grayscale) or 3 (colour), got 4"),
])
def test_bad_settings_are_model_errors(kwargs, message):
    args = {"num_classes": 2, "size": 32, **kwargs}
    with pytest.raises(ModelError) as info:
        build_model(DEFAULT_MODEL, **args)
    assert message in str(info.value)


def test_models_command_lists_every_model():
    result = CliRunner().invoke(cli, ["models", "--size", "32", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [row["name"] for row in listed["models"]] == list(MODELS)
    assert all(row["params"] > 0 and row["macs"] > 0 for row in listed["models"])
    table = CliRunner().invoke(cli, ["models", "--size", "32"])
    assert table.exit_code == 0
    for name in MODELS:
        assert name in table.output


def test_too_small_size_names_the_minimum():
    result = CliRunner().invoke(cli, ["models", "--size", "7"])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: --size 7 is too small for mobilenet_v1: the minimum is 8 (2 stride-2 "
                                     "stages down to a 2x2 feature map); use --size 8 or more")
    assert "Traceback" not in result.output
