"""Standard TFLite metadata (TFLITE_METADATA): written in every export, read from third-party models.

Models come from tests/tflite_models.py (milliseconds, no TensorFlow). Written metadata is
checked with readers other than edgecnn's own where one exists: ``zipfile`` for the appended
labels and the flatc-generated accessors (not the object API edgecnn reads with) for the rest.
MediaPipe, the real consumer, is tested in tests/interop/test_mediapipe.py.
"""

import dataclasses
import hashlib
import io
import json
import zipfile

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from edgecnn.errors import ModelError
from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.tflite import associated_files, standard
from edgecnn.tflite.described import EDGECNN_SOURCE, STANDARD_SOURCE, describe
from edgecnn.tflite.metadata import (ModelMetadata, embed_metadata, metadata_from_bytes, metadata_names,
                                     raw_metadata_entry, verify_content_hash)
from edgecnn.tflite.metadata_schema_generated import schema as ms
from tests.tflite_models import build_classifier, with_metadata


def third_party(model_bytes: bytes, meta: standard.StandardMetadata, files: dict[str, bytes]) -> bytes:
    """A model carrying only standard metadata, laid out as tflite-support's populator writes it."""
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    buffer = schema.BufferT()
    buffer.data = list(standard.build(meta))
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    flat = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    out = io.BytesIO(flat)
    out.seek(0, 2)
    with zipfile.ZipFile(out, "a") as archive:
        for name, blob in files.items():
            archive.writestr(name, blob)
    return out.getvalue()


def meta(**kwargs):
    base = dict(name="maker-model", labels=["r", "g", "b"], mean=[0.0], std=[255.0], channel_order="RGB",
                height=8, width=8)
    return standard.StandardMetadata(**{**base, **kwargs})


def test_export_writes_standard_entry_readable_by_plain_accessors():
    data = with_metadata(build_classifier(), ["red", "green", "blue"], 8, 8, mean=[127.0], std=[64.0])
    assert {"edgecnn", "TFLITE_METADATA"} <= set(metadata_names(data))
    assert zipfile.ZipFile(io.BytesIO(data)).read("labels.txt").decode().split() == ["red", "green", "blue"]
    blob = raw_metadata_entry(data, "TFLITE_METADATA")
    root = ms.ModelMetadata.GetRootAs(blob, 0)
    assert root.Name() == b"test-pool-fc"
    tin = root.SubgraphMetadata(0).InputTensorMetadata(0)
    props = ms.ImageProperties()
    props.Init(tin.Content().ContentProperties().Bytes, tin.Content().ContentProperties().Pos)
    assert props.ColorSpace() == ms.ColorSpaceType.RGB and props.DefaultSize().Width() == 8
    norm = ms.NormalizationOptions()
    unit = tin.ProcessUnits(0)
    norm.Init(unit.Options().Bytes, unit.Options().Pos)
    assert (norm.Mean(0), norm.Std(0)) == (127.0, 64.0)
    out_file = root.SubgraphMetadata(0).OutputTensorMetadata(0).AssociatedFiles(0)
    assert (out_file.Name(), out_file.Type()) == (b"labels.txt", ms.AssociatedFileType.TENSOR_AXIS_LABELS)


def test_content_hash_covers_the_model_not_the_entries():
    plain = build_classifier()
    data = with_metadata(plain, ["a", "b", "c"], 8, 8)
    md = metadata_from_bytes(data)
    roundtrip = flatbuffer_utils.convert_object_to_bytearray(flatbuffer_utils.read_model_from_bytearray(bytearray(plain)))
    assert md.content_hash == "sha256:" + hashlib.sha256(bytes(roundtrip)).hexdigest()
    assert verify_content_hash(data, md)


def test_reserialising_keeps_other_associated_files_and_replaces_labels():
    data = third_party(build_classifier(), meta(), {"labels.txt": b"r\ng\nb\n", "vocab.txt": b"keep me"})
    again = embed_metadata(data, ModelMetadata(labels=["x", "y", "z"], height=8, width=8))
    files = associated_files.split(again)[1]
    assert files["vocab.txt"] == b"keep me" and files["labels.txt"] == b"x\ny\nz\n"
    assert list(metadata_names(again)).count("TFLITE_METADATA") == 1
    twice = embed_metadata(again, metadata_from_bytes(again))
    assert associated_files.split(twice)[1] == files


def test_third_party_model_runs_with_its_own_labels_and_normalization(tmp_path):
    path = tmp_path / "maker.tflite"
    path.write_bytes(third_party(build_classifier(), meta(), {"labels.txt": b"r\ng\nb\n"}))
    described = describe(path.read_bytes())
    assert described.source == STANDARD_SOURCE and described.warnings == []
    classifier = TFLiteClassifier(path)
    assert classifier.labels == ["r", "g", "b"] and classifier.metadata_source == STANDARD_SOURCE
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(build_classifier())
    image = np.zeros((8, 8, 3), np.uint8)
    image[..., 1] = 200
    explicit = TFLiteClassifier(plain, spec_overrides={"mean": [0.0], "std": [255.0]}).predict_image(image)
    guessed = TFLiteClassifier(plain).predict_image(image)
    np.testing.assert_array_equal(classifier.predict_image(image), explicit)
    assert not np.allclose(explicit, guessed)  # mean 0 / std 255 really changes the answer


def test_no_metadata_warns_once_that_it_guesses(tmp_path):
    path = tmp_path / "bare.tflite"
    path.write_bytes(build_classifier())
    warnings = [w for w in TFLiteClassifier(path).warnings if "guessed" in w]
    assert len(warnings) == 1 and "--labels" in warnings[0]
    assert not [w for w in TFLiteClassifier(path, labels=["a", "b", "c"], spec_overrides={"mean": [1.0]}).warnings
                if "guessed" in w]


def test_both_entries_edgecnn_wins_and_disagreement_is_a_warning():
    data = with_metadata(build_classifier(), ["a", "b", "c"], 8, 8)
    assert describe(data).source == EDGECNN_SOURCE and describe(data).warnings == []
    flat, files = associated_files.split(data)
    files["labels.txt"] = b"x\ny\nz\n"
    disagreeing = associated_files.join(flat, files)
    described = describe(disagreeing)
    assert described.metadata.labels == ["a", "b", "c"]
    assert len(described.warnings) == 1 and "disagrees" in described.warnings[0] and "labels" in described.warnings[0]


def test_label_count_must_match_output_size():
    data = third_party(build_classifier(classes=4), meta(labels=None), {"labels.txt": b"r\ng\nb\n"})
    with pytest.raises(ModelError, match="names 3 classes but the model outputs 4 scores"):
        describe(data)


def test_normalization_count_must_match_channels():
    data = third_party(build_classifier(), meta(mean=[1.0, 2.0], std=[3.0, 4.0]), {"labels.txt": b"r\ng\nb\n"})
    with pytest.raises(ModelError, match="mean has 2 values but the input has 3 channel"):
        describe(data)


@pytest.mark.parametrize("cut", [9, 40, 200])
def test_truncated_standard_buffer_is_one_line_error(cut):
    blob = standard.build(meta())[:cut]
    with pytest.raises(ModelError) as info:
        standard.parse(blob, {}, channels=3, num_scores=3)
    assert "\n" not in str(info.value) and ("corrupt" in str(info.value) or "identifier" in str(info.value))


def _break_zip(data: bytes) -> bytes:
    start = len(associated_files.split(data)[0])
    broken = bytearray(data)
    broken[start:start + 4] = b"XXXX"  # the first local file header's signature
    return bytes(broken)


def test_corrupt_zip_is_one_line_error_without_edgecnn_entry_and_a_warning_with_it():
    broken = _break_zip(third_party(build_classifier(), meta(), {"labels.txt": b"r\ng\nb\n"}))
    with pytest.raises(ModelError, match="corrupt associated-files zip") as info:
        describe(broken)
    assert "\n" not in str(info.value)
    described = describe(_break_zip(with_metadata(build_classifier(), ["a", "b", "c"], 8, 8)))
    assert described.metadata.labels == ["a", "b", "c"]
    assert len(described.warnings) == 1 and "corrupt associated-files zip" in described.warnings[0]


def test_implausibly_large_buffer_refused_before_parsing():
    big = b"M001" * (standard.MAX_METADATA_BYTES // 4 + 1)
    with pytest.raises(ModelError, match="refusing to parse"):
        standard.parse(big, {}, channels=3, num_scores=3)


def test_inspect_shows_both_entries(tmp_path):
    from edgecnn.tflite.inspect import format_info, inspect_file

    path = tmp_path / "m.tflite"
    path.write_bytes(with_metadata(build_classifier(), ["red", "green", "blue"], 8, 8))
    info = inspect_file(path)
    assert info.standard["labels"] == ["red", "green", "blue"] and info.metadata["labels"] == ["red", "green", "blue"]
    text = format_info(info)
    assert "edgecnn metadata: test-pool-fc" in text and "standard metadata (TFLITE_METADATA): test-pool-fc" in text
    path.write_bytes(third_party(build_classifier(), meta(), {"labels.txt": b"r\ng\nb\n"}))
    assert inspect_file(path).to_dict()["standard_metadata"]["mean"] == [0.0]


def test_edge_tpu_compiled_layout_gets_both_entries_back():
    """edgetpu_compiler re-serialises the flatbuffer: the metadata table survives, the appended zip does not,
    and the compiled program is a large constant buffer. export re-embeds on that file (exporter._compile)."""
    exported = with_metadata(build_classifier(kind="int8"), ["a", "b", "c"], 8, 8, quantization="int8")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(associated_files.split(exported)[0]))
    program = schema.BufferT()
    program.data = list(np.random.default_rng(0).integers(0, 255, 200_000, dtype=np.uint8))
    model.buffers.insert(1, program)  # shifts every buffer index, as a rewritten graph does
    for entry in model.metadata:
        entry.buffer += 1
    for tensor in model.subgraphs[0].tensors:
        tensor.buffer += 1 if tensor.buffer >= 1 else 0
    compiled = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert associated_files.split(compiled)[1] == {}  # the zip is gone, as after the real compiler
    md = metadata_from_bytes(compiled)
    again = embed_metadata(compiled, dataclasses.replace(md, target="edgetpu", content_hash=""))
    assert list(metadata_names(again)).count("edgecnn") == 1 and list(metadata_names(again)).count("TFLITE_METADATA") == 1
    assert zipfile.ZipFile(io.BytesIO(again)).read("labels.txt") == b"a\nb\nc\n"
    assert describe(again).metadata.target == "edgetpu" and describe(again).standard.labels == ["a", "b", "c"]
    assert verify_content_hash(again, metadata_from_bytes(again))


def test_classify_and_run_use_a_third_party_models_labels_and_say_so(tmp_path):
    import cv2
    from click.testing import CliRunner

    from edgecnn.cli import cli

    model = tmp_path / "maker.tflite"
    model.write_bytes(third_party(build_classifier(), meta(labels=None), {"labels.txt": b"rot\ngruen\nblau\n"}))
    images = tmp_path / "images"
    images.mkdir()
    bgr = np.zeros((8, 8, 3), np.uint8)
    bgr[..., 0] = 220  # blue in OpenCV's BGR
    cv2.imwrite(str(images / "blue.png"), bgr)
    result = CliRunner().invoke(cli, ["classify", str(model), str(images), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["label"] == "blau"
    assert "from its standard TFLite metadata (TFLITE_METADATA)" in result.stderr
    run = CliRunner().invoke(cli, ["run", str(model), "--source", str(images), "--headless", "--json", "--max-frames", "1"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout.splitlines()[0])["label"] == "blau"


def test_oversized_entry_in_the_model_is_refused_before_it_is_copied():
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(build_classifier()))
    buffer = schema.BufferT()
    buffer.data = list(b"M001") + [0] * standard.MAX_METADATA_BYTES
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = "TFLITE_METADATA", len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]
    data = bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    assert metadata_names(data)["TFLITE_METADATA"] == standard.MAX_METADATA_BYTES + 4  # listed, not read
    with pytest.raises(ModelError, match="'TFLITE_METADATA' is 4194308 bytes, more than the 4194304"):
        describe(data)


def _input_and_output(blob):
    root = ms.ModelMetadata.GetRootAs(blob, 0)
    graph = root.SubgraphMetadata(0)
    return graph.InputTensorMetadata(0), graph.OutputTensorMetadata(0)


@pytest.mark.parametrize("mean, std", [([127.5], [127.5]), ([0.0], [255.0]), ([123.7, 116.3, 103.5], [58.4, 57.1, 57.4])])
def test_input_stats_are_the_normalized_range_of_pixels_0_and_255(mean, std):
    # tflite-support's writers give the normalized input's range per channel: what pixels 0 and 255 become.
    tin, _ = _input_and_output(standard.build(meta(mean=mean, std=std)))
    stats = tin.Stats()
    pairs = list(zip(mean, std))  # same length here: one value for all channels, or one per channel
    expected_min = [(0.0 - m) / d for m, d in pairs]
    expected_max = [(255.0 - m) / d for m, d in pairs]
    assert [stats.Min(i) for i in range(stats.MinLength())] == pytest.approx(expected_min)
    assert [stats.Max(i) for i in range(stats.MaxLength())] == pytest.approx(expected_max)


def test_one_mean_with_per_channel_std_is_broadcast_in_the_stats():
    tin, _ = _input_and_output(standard.build(meta(mean=[100.0], std=[10.0, 20.0, 50.0])))
    stats = tin.Stats()
    assert [stats.Min(i) for i in range(3)] == pytest.approx([-10.0, -5.0, -2.0])
    assert [stats.Max(i) for i in range(3)] == pytest.approx([15.5, 7.75, 3.1])


@pytest.mark.parametrize("order, space", [("RGB", "RGB"), ("GRAY", "GRAYSCALE"), ("BGR", "UNKNOWN")])
def test_colour_space_is_the_schemas_own_and_bgr_has_none(order, space):
    tin, _ = _input_and_output(standard.build(meta(channel_order=order)))
    props = ms.ImageProperties()
    props.Init(tin.Content().ContentProperties().Bytes, tin.Content().ContentProperties().Pos)
    assert props.ColorSpace() == getattr(ms.ColorSpaceType, space)


def test_tensors_carry_the_image_classifier_names_and_content_types():
    # The names and content kinds tflite-support's ImageClassifierWriter gives its two tensors.
    tin, tout = _input_and_output(standard.build(meta()))
    assert (tin.Name(), tout.Name()) == (b"image", b"probability")
    assert tin.Content().ContentPropertiesType() == ms.ContentProperties.ImageProperties
    assert tout.Content().ContentPropertiesType() == ms.ContentProperties.FeatureProperties
    assert tout.Content().ContentProperties() is not None


def test_every_field_written_is_read_back():
    written = meta(name="maker", description="a model", version="v7", license="MIT", labels=["r", "g", "b"],
                   mean=[1.0, 2.0, 3.0], std=[4.0, 5.0, 6.0], channel_order="RGB", height=6, width=9)
    read = standard.parse(standard.build(written), {standard.LABELS_FILE: b"r\ng\nb\n"}, name="m.tflite",
                          channels=3, num_scores=3)
    assert read == written


@pytest.mark.parametrize("blob", [b"", b"M001", b"12345678", b"\x00" * 64])
def test_an_entry_without_the_identifier_is_refused_naming_the_model(blob):
    with pytest.raises(ModelError, match=r"^m\.tflite's TFLITE_METADATA entry is not a TFLite Metadata flatbuffer "
                                         r"\(no 'M001' identifier\); it is corrupt or truncated, re-export the model$"):
        standard.parse(blob, {}, name="m.tflite", channels=3, num_scores=3)


def test_third_party_normalization_for_another_channel_count_is_refused():
    blob = standard.build(meta(mean=[0.0], std=[1.0, 2.0]))
    with pytest.raises(ModelError, match=r"^m\.tflite's TFLITE_METADATA NormalizationOptions std has 2 values"):
        standard.parse(blob, {standard.LABELS_FILE: b"r\ng\nb\n"}, name="m.tflite", channels=3, num_scores=3)


def test_unit_normalization_is_read_as_given():
    # mean 0, std 1: the model takes raw 0..255 pixels, a common third-party choice
    read = standard.parse(standard.build(meta(mean=[0.0], std=[1.0])), {standard.LABELS_FILE: b"r\ng\nb\n"},
                          name="m.tflite", channels=3, num_scores=3)
    assert (read.mean, read.std) == ([0.0], [1.0])
