"""TFLiteClassifier: metadata-driven preprocessing, labels, float and int8 models."""

import numpy as np
import pytest
from tflite_models import INPUT_SCALE, build_classifier, expected_probabilities, with_metadata, write_model

from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.preprocess import InputSpec, prepare_image


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "float": write_model(root / "float.tflite"),
        "int8": write_model(root / "int8.tflite", kind="int8"),
        "bgr": write_model(root / "bgr.tflite", channel_order="BGR"),
        "bare": write_model(root / "bare.tflite", metadata=False, height=12, width=10),
        "gray": write_model(root / "gray.tflite", labels=("bright", "other"), channels=1, classes=2),
    }


def _solid(rgb, size=(20, 24)):
    image = np.zeros((*size, 3), np.uint8)
    image[...] = rgb
    return image


def test_float_model_scores_match_the_known_graph(models):
    clf = TFLiteClassifier(models["float"], threads=1)
    assert clf.labels == ["red", "green", "blue"]
    assert clf.spec == InputSpec(8, 8)
    assert clf.metadata.model_name == "test-pool-fc"
    scores = clf.predict_image(_solid((230, 60, 10)))
    np.testing.assert_allclose(scores, expected_probabilities((230, 60, 10)), atol=1e-5)
    assert clf.labels[int(np.argmax(scores))] == "red"


def test_channel_order_comes_from_metadata(models):
    clf = TFLiteClassifier(models["bgr"])
    assert clf.spec.channel_order == "BGR"
    scores = clf.predict_image(_solid((230, 60, 10)))
    np.testing.assert_allclose(scores, expected_probabilities((230, 60, 10), channel_order="BGR"), atol=1e-5)
    assert int(np.argmax(scores)) == 2  # the red channel feeds the third class in a BGR model


def test_frame_and_image_paths_agree(models):
    clf = TFLiteClassifier(models["int8"])
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.testing.assert_array_equal(clf.predict_frame(bgr), clf.predict_image(rgb))


def test_predict_on_prepare_image_equals_predict_image(models):
    # Parity on the training side feeds prepare_image arrays to predict: it must match the device path exactly.
    for name in ("float", "int8", "gray"):
        clf = TFLiteClassifier(models[name])
        images = [np.random.default_rng(i).integers(0, 256, (17, 13, 3), dtype=np.uint8) for i in range(3)]
        batch = np.stack([prepare_image(im, clf.spec) for im in images])
        scores = clf.predict(batch)
        assert scores.shape == (3, len(clf.labels)) and scores.dtype == np.float32
        for row, image in zip(scores, images):
            np.testing.assert_array_equal(row, clf.predict_image(image))


def test_int8_model_quantizes_and_dequantizes(models):
    clf = TFLiteClassifier(models["int8"])
    assert clf.input_dtype == "int8"
    assert clf.input_detail["quantization"][0] == pytest.approx(INPUT_SCALE)
    scores = clf.predict_image(_solid((230, 60, 10)))
    # Output scale 1/256: int8 scores sit within a couple of quantization steps of the float model.
    np.testing.assert_allclose(scores, expected_probabilities((230, 60, 10)), atol=3 / 256)
    assert scores.sum() == pytest.approx(1.0, abs=3 / 256)


def test_model_without_metadata_takes_size_from_tensor_and_flags(models, tmp_path):
    clf = TFLiteClassifier(models["bare"])
    assert clf.metadata is None
    assert (clf.spec.height, clf.spec.width) == (12, 10)
    assert clf.labels == ["0", "1", "2"]
    custom = TFLiteClassifier(models["bare"], labels=["a", "b", "c"],
                              spec=InputSpec(12, 10, channel_order="BGR", mean=(0,), std=(255,)))
    assert custom.labels == ["a", "b", "c"]
    assert int(np.argmax(custom.predict_image(_solid((250, 0, 0))))) == 2


def test_grayscale_model(models):
    clf = TFLiteClassifier(models["gray"])
    assert clf.spec.channels == 1 and clf.labels == ["bright", "other"]
    bright = clf.predict_image(_solid((250, 250, 250)))
    assert clf.labels[int(np.argmax(bright))] == "bright"


def test_output_size_must_match_labels(models, tmp_path):
    mismatched = tmp_path / "mismatch.tflite"
    mismatched.write_bytes(with_metadata(build_classifier(classes=3), ["a", "b"], 8, 8))
    with pytest.raises(ModelError, match=r"outputs 3 scores but its metadata name 2 classes; give a labels file with 3 lines"):
        TFLiteClassifier(mismatched)
    with pytest.raises(ModelError, match=r"outputs 3 scores but the given labels name 4 classes"):
        TFLiteClassifier(models["float"], labels=["a", "b", "c", "d"])
    fixed = TFLiteClassifier(mismatched, labels=["x", "y", "z"])  # --labels repairs such a model
    assert fixed.labels == ["x", "y", "z"]


def test_metadata_that_contradicts_the_input_tensor(tmp_path):
    wrong = tmp_path / "wrong_size.tflite"
    wrong.write_bytes(with_metadata(build_classifier(height=8, width=8), ["a", "b", "c"], 16, 16))
    with pytest.raises(ModelError, match=r"takes input \[1, 8, 8, 3\] but its preprocessing says 16x16x3"):
        TFLiteClassifier(wrong)


def test_batch_models_are_run_one_image_at_a_time(tmp_path):
    path = tmp_path / "batch4.tflite"
    path.write_bytes(with_metadata(build_classifier(batch=4), ["r", "g", "b"], 8, 8))
    clf = TFLiteClassifier(path)
    assert list(clf.input_detail["shape"]) == [1, 8, 8, 3]
    assert clf.predict(np.zeros((5, 8, 8, 3), np.float32)).shape == (5, 3)


def test_predict_rejects_wrong_shapes(models):
    clf = TFLiteClassifier(models["float"])
    with pytest.raises(DataError, match=r"predict needs inputs of shape \(N, 8, 8, 3\), got \(2, 9, 8, 3\)"):
        clf.predict(np.zeros((2, 9, 8, 3), np.float32))
