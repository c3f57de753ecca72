"""The .tflite metadata contract: written by export, read by the device half without TensorFlow."""

import dataclasses
import pytest

from edgecnn.errors import ModelError
from edgecnn.tflite.flatbuffer import check_tflite_bytes
from edgecnn.tflite.metadata import (
    ModelMetadata,
    embed_metadata,
    labels_from_file,
    metadata_from_bytes,
    metadata_names,
    read_metadata,
    verify_content_hash,
)


@pytest.fixture(scope="module")
def plain_tflite():
    from edgecnn.training.keras_compat import keras, tf

    model = keras.Sequential([
        keras.layers.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3, activation="softmax"),
    ])
    return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def test_round_trip_keeps_every_field(plain_tflite, tmp_path):
    metadata = ModelMetadata(labels=["cat", "dog", "owl"], height=8, width=8, channel_order="BGR",
                             mean=[0.0], std=[255.0], model_name="tiny", quantization="none",
                             recipe={"model": {"size": 8}})
    path = tmp_path / "m.tflite"
    path.write_bytes(embed_metadata(plain_tflite, metadata))
    read = read_metadata(path)
    assert read.labels == ["cat", "dog", "owl"]
    assert (read.height, read.width, read.channel_order, read.std) == (8, 8, "BGR", [255.0])
    assert read.recipe == {"model": {"size": 8}}
    assert read.content_hash.startswith("sha256:")
    assert (read.mean, read.model_name, read.quantization) == ([0.0], "tiny", "none")
    # Nothing else is lost either: every field reads back as written (embedding sets the content hash).
    assert dataclasses.asdict(read) == dataclasses.asdict(metadata)
    # The converter's own entries survive beside ours.
    assert "min_runtime_version" in metadata_names(path.read_bytes())


def test_model_without_edgecnn_metadata_reads_as_none(plain_tflite):
    assert metadata_from_bytes(plain_tflite) is None


def test_re_embedding_replaces_the_entry_and_keeps_the_hash(plain_tflite):
    first = embed_metadata(plain_tflite, ModelMetadata(labels=["a", "b", "c"], height=8, width=8))
    md = metadata_from_bytes(first)
    md.labels = ["x", "y", "z"]
    second = embed_metadata(first, md)
    assert list(metadata_names(second)).count("edgecnn") == 1
    assert metadata_from_bytes(second).labels == ["x", "y", "z"]
    assert metadata_from_bytes(second).content_hash == metadata_from_bytes(first).content_hash
    assert len(second) == len(first) or abs(len(second) - len(first)) < 16


def test_content_hash_detects_a_changed_model(plain_tflite):
    data = embed_metadata(plain_tflite, ModelMetadata(labels=["a", "b", "c"], height=8, width=8))
    md = metadata_from_bytes(data)
    assert verify_content_hash(data, md)
    # Change one weight byte inside the flatbuffer, keeping the edgecnn entry as it was.
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    metadata_buffers = {entry.buffer for entry in model.metadata}
    weights = max((b for i, b in enumerate(model.buffers) if i not in metadata_buffers and b.data is not None),
                  key=lambda b: len(b.data))
    weights.data = bytes([weights.data[0] ^ 0xFF]) + bytes(weights.data[1:])
    tampered = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert metadata_from_bytes(tampered).content_hash == md.content_hash
    assert not verify_content_hash(bytes(tampered), md)


@pytest.mark.parametrize("blob, message", [
    (b"", "not a TFLite model"),
    (b"hello world, not a model", "not a TFLite model"),
])
def test_non_models_are_refused_before_any_interpreter(blob, message):
    with pytest.raises(ModelError, match=message):
        check_tflite_bytes(blob, "x.tflite")


def test_truncated_model_is_refused(plain_tflite):
    with pytest.raises(ModelError, match="corrupt or truncated|not a TFLite model|no subgraph"):
        check_tflite_bytes(plain_tflite[: len(plain_tflite) // 3], "cut.tflite")


@pytest.mark.parametrize("kwargs, message", [
    (dict(channel_order="RGBA"), "channel_order 'RGBA' is not one of"),
    (dict(channels=1), "does not fit 1 channel"),
    (dict(std=[1.0, 0.0, 1.0]), "std must not contain 0"),
    (dict(mean=[1.0, 2.0]), "mean has 2 values"),
])
def test_invalid_metadata_is_refused(kwargs, message):
    with pytest.raises(ModelError, match=message):
        ModelMetadata(labels=["a"], height=8, width=8, **kwargs)


def test_metadata_that_is_not_json_is_refused():
    with pytest.raises(ModelError, match="not valid JSON"):
        ModelMetadata.from_json(b"\xff{", "m.tflite")


def test_labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\n\ndog\n")
    assert labels_from_file(path) == ["cat", "dog"]
    path.write_text("\n")
    with pytest.raises(ModelError, match="empty"):
        labels_from_file(path)
