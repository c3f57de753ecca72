"""Transfer learning's model side: ImageNet backbones from Keras's cache (no network), the user's own weights
copied by name, and a pretrained model that prunes, quantizes, converts to int8 and maps to the Edge TPU.

Nothing is downloaded: a "pretrained" file is made locally (random weights) under the exact name tf_keras
expects, in a temporary HOME's ~/.keras/models, and every way to the network raises.
"""

import re
import socket
import sys
import urllib.request

import numpy as np
import pytest

from edgecnn.errors import ModelError
from edgecnn.tflite.edgetpu import check_model
from edgecnn.tflite.inspect import inspect_bytes
from edgecnn.training.export.convert import convert
from edgecnn.training.keras_compat import keras
from edgecnn.training.models import model_stats
from edgecnn.training.models.mobilenet import HEAD_LAYERS, build_model
from edgecnn.training.models.model_io import quantize_for_training, save_keras_model
from edgecnn.training.models.pretrained import (
    IMAGENET_WEIGHTS,
    build_pretrained,
    load_backbone_weights,
    pretrained_input,
    pretrained_options,
)
from edgecnn.training.optimize.prune import plan_layers, plan_schedule, wrap_for_pruning

V1_FILE = "mobilenet_2_5_128_tf_no_top.h5"


class NetworkUsed(AssertionError):
    pass


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """A fresh HOME and no network: urllib, tf_keras's own urlretrieve/urlopen and sockets all raise."""
    def refuse(*args, **kwargs):
        raise NetworkUsed(f"network access: {args[:1]}")

    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)  # writable ~/.keras: get_file looks there, not in /tmp/.keras
    monkeypatch.setenv("HOME", str(home))
    data_utils = sys.modules["tf_keras.src.utils.data_utils"]
    for module, name in ((urllib.request, "urlopen"), (urllib.request, "urlretrieve"),
                         (data_utils, "urlopen"), (data_utils, "urlretrieve"), (socket.socket, "connect")):
        monkeypatch.setattr(module, name, refuse)
    return home


@pytest.fixture
def cached_v1(offline):
    """The 0.25/128 MobileNet no-top weights file, made locally, where tf_keras caches the real one."""
    backbone = keras.applications.MobileNet(alpha=0.25, input_shape=(128, 128, 3), include_top=False,
                                            weights=None, pooling="avg")
    path = offline / ".keras" / "models" / V1_FILE
    path.parent.mkdir()
    backbone.save_weights(str(path))
    return path, backbone


def test_file_names_and_urls_are_tf_keras_own():
    applications = sys.modules["tf_keras.src.applications.mobilenet"], sys.modules["tf_keras.src.applications.mobilenet_v2"]
    assert IMAGENET_WEIGHTS["mobilenet_v1"].base_url == applications[0].BASE_WEIGHT_PATH
    assert IMAGENET_WEIGHTS["mobilenet_v2"].base_url == applications[1].BASE_WEIGHT_PATH
    assert IMAGENET_WEIGHTS["mobilenet_v1"].file_name(0.25, 128) == V1_FILE
    assert IMAGENET_WEIGHTS["mobilenet_v1"].file_name(0.5, 224) == "mobilenet_5_0_224_tf_no_top.h5"
    assert (IMAGENET_WEIGHTS["mobilenet_v2"].file_name(0.35, 96)
            == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5")
    options = {o["architecture"]: o for o in pretrained_options()}
    assert options["mobilenet_v2"]["alphas"] == [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]
    assert options["mobilenet_v1"]["sizes"] == [128, 160, 192, 224]


def test_imagenet_from_the_cache_without_network(cached_v1, offline):
    _, backbone = cached_v1
    model, names = build_pretrained("imagenet", "mobilenet_v1", num_classes=4, size=128, channels=1, alpha=0.25)
    assert model.input_shape == (None, 128, 128, 3)  # ImageNet weights take RGB, whatever the data's channels
    assert model.output_shape == (None, 4)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)  # flat: tfmot can wrap it
    assert set(names) & set(HEAD_LAYERS) == set() and "conv_pw_13" in names
    np.testing.assert_array_equal(model.get_layer("conv_pw_3").get_weights()[0],
                                  backbone.get_layer("conv_pw_3").get_weights()[0])
    # A run that started from ImageNet is itself a source: its float.keras has the applications backbone.
    again, _ = build_pretrained(save_keras_model(model, offline / "float.keras"), "mobilenet_v1", num_classes=2,
                                size=128, alpha=0.25)
    np.testing.assert_array_equal(again.get_layer("conv_pw_3").get_weights()[0],
                                  backbone.get_layer("conv_pw_3").get_weights()[0])
    spec = pretrained_input("imagenet", 128, channels=1)
    assert (spec.channels, spec.channel_order, spec.mean, spec.std) == (3, "RGB", (127.5,) * 3, (127.5,) * 3)


def test_pretrained_model_prunes_quantizes_and_maps_to_the_edge_tpu(cached_v1):
    model, _ = build_pretrained("imagenet", "mobilenet_v1", num_classes=3, size=128, alpha=0.25)
    params, macs = model_stats(model)
    assert 200_000 < params < 240_000 and macs > 10_000_000
    plan = plan_layers(model)
    assert "conv_pw_1" in plan.pruned and "conv1" in plan.skipped and "logits" in plan.skipped
    import tensorflow_model_optimization as tfmot

    pruned = tfmot.sparsity.keras.strip_pruning(wrap_for_pruning(model, plan, plan_schedule(0.5, 10)))
    assert quantize_for_training(model) is not None
    qat = quantize_for_training(pruned, preserve_sparsity=True)
    rng = np.random.default_rng(0)
    data = convert(qat, "int8", io="int8",
                   representative=lambda: ([rng.uniform(-1, 1, (1, 128, 128, 3)).astype("float32")] for _ in range(2)))
    report = check_model(inspect_bytes(data))
    assert report.compatible, (report.problems, report.unsupported_ops)
    assert len(data) < 400_000


def test_offline_without_cache_names_file_url_and_place(offline):
    with pytest.raises(ModelError) as failed:
        build_pretrained("imagenet", "mobilenet_v1", num_classes=2, size=128, alpha=0.25)
    message = str(failed.value)
    assert "\n" not in message and V1_FILE in message
    assert "keras-applications/mobilenet/" + V1_FILE in message
    assert str(offline / ".keras" / "models" / V1_FILE) in message


@pytest.mark.parametrize("kwargs, expected", [
    ({"alpha": 0.3, "size": 128}, ("no ImageNet weights for alpha 0.3 at 128px; published: alpha 0.25/0.5/0.75/1 "
                                   "at 128/160/192/224px")),
    ({"alpha": 0.25, "size": 96}, "published: alpha 0.25/0.5/0.75/1 at 128/160/192/224px"),
])
def test_imagenet_without_published_weights_lists_the_ones_that_exist(offline, kwargs, expected):
    with pytest.raises(ModelError, match=re.escape(expected)):
        build_pretrained("imagenet", "mobilenet_v1", num_classes=2, **kwargs)


def test_imagenet_for_a_tiny_model_and_a_bad_name_are_one_line_errors(offline, tmp_path):
    with pytest.raises(ModelError, match="--weights imagenet needs one of mobilenet_v1, mobilenet_v2"):
        build_pretrained("imagenet", "mobilenet_v1_tiny", num_classes=2, size=128, alpha=0.25)
    with pytest.raises(ModelError, match="'imagenett' is neither 'imagenet' nor an existing run directory"):
        build_pretrained("imagenett", "mobilenet_v1", num_classes=2, size=128)


def test_own_keras_model_of_another_class_count_is_copied_by_name(tmp_path):
    source = build_model("mobilenet_v1_tiny", num_classes=5, size=16)
    path = save_keras_model(source, tmp_path / "old.keras")
    model, names = build_pretrained(path, "mobilenet_v1_tiny", num_classes=3, size=16)
    assert model.output_shape == (None, 3)
    for name in names:
        for mine, theirs in zip(model.get_layer(name).get_weights(), source.get_layer(name).get_weights()):
            np.testing.assert_array_equal(mine, theirs)
    run = tmp_path / "run"
    run.mkdir()
    save_keras_model(source, run / "float.keras")  # an edgecnn run directory
    fresh = build_model("mobilenet_v1_tiny", num_classes=2, size=16)
    copied = load_backbone_weights(fresh, run)
    assert "block1_pw" in copied.copied and "logits" not in copied.copied


def test_weights_files_both_layouts(tmp_path):
    source = build_model("mobilenet_v2_tiny", num_classes=4, size=16)
    for name in ("w.h5", "w.weights.h5"):  # tf_keras: named HDF5, and the newer type-and-position layout
        source.save_weights(str(tmp_path / name))
        model, _ = build_pretrained(tmp_path / name, "mobilenet_v2_tiny", num_classes=2, size=16)
        np.testing.assert_array_equal(model.get_layer("block2_project").get_weights()[0],
                                      source.get_layer("block2_project").get_weights()[0])


def test_mismatch_names_the_layer_and_both_shapes(tmp_path, offline):
    wide = keras.applications.MobileNet(alpha=0.5, input_shape=(128, 128, 3), include_top=False, weights=None)
    wide.save_weights(str(tmp_path / "wide.h5"))
    with pytest.raises(ModelError) as failed:
        build_pretrained(tmp_path / "wide.h5", "mobilenet_v1", num_classes=2, size=128, alpha=0.25)
    assert str(failed.value) == (f"layer conv1 has kernel (3,3,3,16) in {tmp_path / 'wide.h5'} but (3,3,3,8) in "
                                 "this model (alpha 0.5 vs 0.25?)")
    gray = build_model("mobilenet_v1_tiny", num_classes=2, size=16, channels=1)
    save_keras_model(gray, tmp_path / "gray.keras")
    with pytest.raises(ModelError, match=r"layer stem has kernel \(3,3,1,8\) in .* but \(3,3,3,8\) in this model "
                                         r"\(channels 1 vs 3\?\)"):
        build_pretrained(tmp_path / "gray.keras", "mobilenet_v1_tiny", num_classes=2, size=16, channels=3)
