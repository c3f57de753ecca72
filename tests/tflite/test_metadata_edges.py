"""edgecnn metadata on TF-free models (tests/tflite_models.py): what the mutation score
(tools/mutation_score.sh) found untested when test_metadata.py's Keras-converted model is left out.
Written entries are read back with the flatc-generated accessors, not edgecnn's own reader."""

import dataclasses
import json

import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from edgecnn.errors import ModelError
from edgecnn.tflite.metadata import (ModelMetadata, embed_metadata, labels_from_file, metadata_from_bytes,
                                     metadata_names, raw_metadata_entry, read_metadata)
from edgecnn.tflite.metadata_schema_generated import schema as ms
from tests.tflite_models import build_classifier

FULL = dict(labels=["cat", "dog", "owl"], height=8, width=8, channels=3, channel_order="BGR", mean=[1.0, 2.0, 3.0],
            std=[4.0, 5.0, 6.0], resize="nearest", model_name="tiny", quantization="int8", quantization_source="qat",
            target="edgetpu", recipe={"model": {"size": 8}, "license": "Apache-2.0"}, edgecnn_version="9.9")


def _with_foreign_entry(model_bytes: bytes, name="min_runtime_version", blob=b"1.5.0") -> bytes:
    """A model carrying another tool's metadata entry, as TFLiteConverter output does."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = list(blob)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = name, len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def test_every_field_survives_a_file_round_trip_and_other_entries_are_kept(tmp_path):
    data = embed_metadata(_with_foreign_entry(build_classifier()), ModelMetadata(**FULL))
    path = tmp_path / "m.tflite"
    path.write_bytes(data)
    read = read_metadata(path)
    assert {k: v for k, v in dataclasses.asdict(read).items() if k in FULL} == FULL
    assert raw_metadata_entry(data, "min_runtime_version") == b"1.5.0"
    again = embed_metadata(data, read)  # re-embedding replaces ours, keeps theirs
    assert sorted(metadata_names(again)) == sorted(["min_runtime_version", "edgecnn", "TFLITE_METADATA"])
    assert metadata_names(again)["min_runtime_version"] == 5


def test_the_standard_entry_describes_the_model_from_edgecnns_fields():
    data = embed_metadata(build_classifier(), ModelMetadata(**FULL))
    md = metadata_from_bytes(data)
    root = ms.ModelMetadata.GetRootAs(raw_metadata_entry(data, "TFLITE_METADATA"), 0)
    assert root.Name() == b"tiny"
    assert root.Version() == md.content_hash.encode() and md.content_hash.startswith("sha256:")
    assert root.License() == b"Apache-2.0"
    description = root.Description().decode()
    assert description.startswith("3-class image classifier made by edgecnn 9.9 (int8, edgetpu)")
    plain = embed_metadata(build_classifier(), ModelMetadata(labels=["a", "b", "c"], height=8, width=8))
    plain_root = ms.ModelMetadata.GetRootAs(raw_metadata_entry(plain, "TFLITE_METADATA"), 0)
    assert plain_root.Name() == b"edgecnn image classifier" and plain_root.License() in (b"", None)
    assert "(float, cpu)" in plain_root.Description().decode()


def test_json_is_the_same_whatever_order_the_recipe_keys_came_in():
    first = ModelMetadata(labels=["a"], height=8, width=8, recipe={"a": 1, "b": {"y": 2, "x": 3}})
    second = ModelMetadata(labels=["a"], height=8, width=8, recipe={"b": {"x": 3, "y": 2}, "a": 1})
    assert first.to_json() == second.to_json()
    assert json.loads(first.to_json())["recipe"] == {"a": 1, "b": {"x": 3, "y": 2}}


def test_a_unit_std_is_valid():
    assert ModelMetadata(labels=["a"], height=8, width=8, mean=[0.0], std=[1.0]).std == [1.0]


@pytest.mark.parametrize("text, message", [
    ("[1, 2]", r"^m\.tflite carries edgecnn metadata that is not a JSON object; re-export it$"),
    ('{"labels": ["a"]}', r"^m\.tflite carries incomplete edgecnn metadata \(.*\); re-export it$"),
])
def test_bad_entries_are_refused_naming_the_model(text, message):
    with pytest.raises(ModelError, match=message):
        ModelMetadata.from_json(text, "m.tflite")


def test_read_metadata_names_the_file_in_its_errors(tmp_path):
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(build_classifier()))
    path = tmp_path / "broken.tflite"
    path.write_bytes(_with_foreign_entry(bytes(flatbuffer_utils.convert_object_to_bytearray(model)),
                                         name="edgecnn", blob=b"[]"))
    with pytest.raises(ModelError, match=rf"^{path} carries edgecnn metadata that is not a JSON object"):
        read_metadata(path)


def test_channel_errors_name_the_choices():
    with pytest.raises(ModelError, match=r"^channel_order 'RGBA' is not one of RGB, BGR, GRAY$"):
        ModelMetadata(labels=["a"], height=8, width=8, channel_order="RGBA")
    with pytest.raises(ModelError, match=r"^channels must be 1 or 3, got 4$"):
        ModelMetadata(labels=["a"], height=8, width=8, channels=4)
    assert ModelMetadata(labels=["a"], height=8, width=8, channels=1, channel_order="GRAY", mean=[0.0],
                         std=[1.0]).channel_order == "GRAY"


def test_labels_file_is_utf8_and_a_missing_one_is_named(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("café\nStraße\n".encode("utf-8"))
    assert labels_from_file(path) == ["café", "Straße"]
    with pytest.raises(ModelError, match=r"^labels file .*missing\.txt does not exist; give a text file"):
        labels_from_file(tmp_path / "missing.txt")
