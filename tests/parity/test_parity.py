"""`edgecnn parity` and the parity library: report, gates, pairings, bad input, per-layer diagnosis.

One small run is built once per module (scikit-learn's digits, 16x16, a two-conv tf_keras model
trained for a few seconds) with a float32 and an int8 export, so every test works on real
models and real quantization without the full training/export pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import DataError, GateFailed
from edgecnn.parity.gates import check_gates
from edgecnn.parity.report import report_name
from edgecnn.parity.stats import compare_scores

SIZE = 16
NUM_IMAGES = 260  # 180 train, 80 test
LABELS = [str(i) for i in range(10)]


# --- a tiny real run ----------------------------------------------------------------------------

def _digits_images():
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images[:NUM_IMAGES] / 16.0 * 255).astype(np.uint8)
    rgb = [cv2.cvtColor(cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_NEAREST), cv2.COLOR_GRAY2RGB)
           for im in images]
    return rgb, digits.target[:NUM_IMAGES]


def _build_keras(size: int, seed: int):
    from edgecnn.training.keras_compat import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    out = keras.layers.Dense(10, activation="softmax", name="classifier")(x)
    return keras.Model(inp, out, name=f"tiny{size}")


def _to_tflite(model, calibration, *, int8: bool, labels, size: int, quantization: str) -> bytes:
    from edgecnn.tflite.metadata import ModelMetadata, embed_metadata
    from edgecnn.training.keras_compat import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    md = ModelMetadata(labels=list(labels), height=size, width=size, quantization=quantization,
                       quantization_source="ptq" if int8 else "float")
    return embed_metadata(converter.convert(), md)


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory):
    """A run directory: recipe, labels, split over real image files, float.keras, fp32 + int8 exports."""
    import cv2
    import yaml

    from edgecnn.recipe import default_recipe
    from edgecnn.runtime.preprocess import InputSpec, prepare_image

    root = tmp_path_factory.mktemp("parity_run")
    images, targets = _digits_images()
    items = []
    for i, (image, label) in enumerate(zip(images, targets)):
        rel = f"{label}/{i:04d}.png"
        (root / "data" / str(label)).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "data" / rel), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        items.append([rel, int(label)])
    run = root / "run"
    run.mkdir()
    (run / "split.json").write_text(json.dumps({"data_root": str(root / "data"), "train": items[:180],
                                                "val": [], "test": items[180:]}))
    (run / "labels.txt").write_text("\n".join(LABELS) + "\n")
    recipe = default_recipe()
    recipe.model.size = SIZE
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict()))

    spec = InputSpec(height=SIZE, width=SIZE)
    x = np.stack([prepare_image(im, spec) for im in images])
    model = _build_keras(SIZE, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x[:180], targets[:180], epochs=40, batch_size=32, verbose=0)
    model.save(run / "float.keras")
    (run / "model_fp32.tflite").write_bytes(_to_tflite(model, x[:100], int8=False, labels=LABELS, size=SIZE,
                                                       quantization="none"))
    (run / "model_int8.tflite").write_bytes(_to_tflite(model, x[:100], int8=True, labels=LABELS, size=SIZE,
                                                       quantization="int8"))
    return run


def _invoke(*args):
    result = CliRunner().invoke(cli, ["parity", *map(str, args)])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _json(result) -> dict:
    return json.loads(result.stdout)


# --- the report, from hand-made scores -------------------------------------------------------------

def test_compare_scores_counts_agreement_errors_and_accuracy():
    ref = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], np.float32)
    cand = np.array([[0.8, 0.2, 0.0], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], np.float32)
    y_true = np.array([0, 1, 2, 1])
    report = compare_scores(ref, cand, labels=["a", "b", "c"], y_true=y_true, paths=["p0", "p1", "p2", "p3"])
    assert report.num_samples == 4 and report.num_classes == 3
    assert report.top1_agreement == pytest.approx(0.75)
    assert report.top5_agreement is None  # 3 classes: top-5 is meaningless
    assert report.max_abs_error == pytest.approx(0.3)
    assert report.mean_abs_error == pytest.approx((0.1 + 0.1 + 0.3 + 0.3) / 12)
    assert report.reference["accuracy"] == pytest.approx(0.75)
    assert report.candidate["accuracy"] == pytest.approx(0.5)
    assert report.accuracy_drop_pp == pytest.approx(25.0)
    by_label = {c["label"]: c for c in report.per_class}
    assert by_label["b"]["reference_accuracy"] == pytest.approx(0.5)
    assert by_label["b"]["candidate_accuracy"] == pytest.approx(0.0)
    assert by_label["b"]["delta_pp"] == pytest.approx(-50.0)
    assert by_label["a"]["delta_pp"] == 0
    assert report.disagreements == [{"path": "p1", "label": "b", "reference": "b", "reference_score": pytest.approx(0.7),
                                     "candidate": "a", "candidate_score": pytest.approx(0.5)}]


def test_top5_agreement_is_reference_choice_within_candidate_top5():
    rng = np.random.default_rng(0)
    ref = rng.random((50, 8)).astype(np.float32)
    cand = ref.copy()
    # Image 0: the reference's choice becomes the candidate's worst class -> outside its top 5.
    cand[0, ref[0].argmax()] = -1.0
    # Image 1: the reference's choice drops to the candidate's second place -> top-1 differs, top-5 agrees.
    second = np.argsort(ref[1])[-2]
    cand[1, ref[1].argmax()] = ref[1, second] - 1e-3
    report = compare_scores(ref, cand, labels=[str(i) for i in range(8)])
    assert report.top1_agreement == pytest.approx(48 / 50)
    assert report.top5_agreement == pytest.approx(49 / 50)
    assert report.reference["accuracy"] is None and report.accuracy_drop_pp is None


def test_gates_pass_within_limits_and_fail_with_exit_code_3():
    ref = np.eye(4, dtype=np.float32)[[0, 1, 2, 3] * 25]
    cand = ref.copy()
    cand[:2] = np.roll(cand[:2], 1, axis=1)  # 2 of 100 images change class, both were right
    report = compare_scores(ref, cand, labels=list("abcd"), y_true=ref.argmax(1))
    check_gates(report, max_disagreement=0.02, max_accuracy_drop=2.0)  # exactly at the limits: passes
    with pytest.raises(GateFailed, match=r"disagreement 2\.00% \(2 of 100 images\) exceeds --max-disagreement 1\.00%"):
        check_gates(report, max_disagreement=0.01)
    with pytest.raises(GateFailed, match=r"accuracy drop 2\.00 pp \(100\.00% -> 98\.00%\) exceeds --max-accuracy-drop 1 pp"):
        check_gates(report, max_accuracy_drop=1.0)
    assert GateFailed.exit_code == 3


@pytest.mark.parametrize("kwargs, message", [
    ({"max_disagreement": 1.5}, "--max-disagreement is a fraction between 0 and 1"),
    ({"max_disagreement": -0.1}, "--max-disagreement is a fraction between 0 and 1"),
    ({"max_accuracy_drop": -1}, "--max-accuracy-drop is in percentage points and must be >= 0"),
])
def test_gate_values_are_checked(kwargs, message):
    report = compare_scores(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32), labels=list("abc"))
    with pytest.raises(DataError, match=message):
        check_gates(report, **kwargs)


def test_accuracy_gate_needs_labels():
    report = compare_scores(np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32), labels=list("abc"))
    with pytest.raises(DataError, match="--max-accuracy-drop needs labelled images"):
        check_gates(report, max_accuracy_drop=1.0)


def test_report_name_strips_the_export_prefix():
    assert report_name("runs/x/model_int8.tflite") == "int8"
    assert report_name("elsewhere/mine.tflite") == "mine"


# --- the command on real models ---------------------------------------------------------------------

def test_keras_vs_int8_on_a_run(parity_run):
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", parity_run)
    assert result.exit_code == 0, result.output
    assert "top-1 agreement" in result.stdout and "top-5 agreement" in result.stdout
    assert "Keras float" in result.stdout and "TFLite int8" in result.stdout
    saved = json.loads((parity_run / "parity_int8.json").read_text())
    assert saved["num_samples"] == 80
    # The int8 export of a trained model agrees with it on nearly every test image.
    # Measured with this fixture's recipe and seeds 0, 1, 2, 3 (the fixture uses 0, which deterministic ops
    # reproduce exactly): int8 agreement 0.975, 0.975, 0.9375, 0.975; float accuracy 0.55, 0.475, 0.4625, 0.5875
    # on the 80 test images. The bounds sit under the worst seed: 0.9 (at most 8 of 80 flips) and 0.35 (3.5x
    # chance, so agreement is not the trivial agreement of two untrained models).
    assert saved["top1_agreement"] >= 0.9
    assert saved["reference"]["accuracy"] > 0.35


def test_json_has_the_documented_fields(parity_run):
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", parity_run, "--json")
    assert result.exit_code == 0, result.output
    report = _json(result)
    for key in ("num_samples", "top1_agreement", "top5_agreement", "max_abs_error", "mean_abs_error",
                "accuracy_drop_pp", "per_class", "disagreements"):
        assert key in report
    assert 0 <= report["reference"]["accuracy"] <= 1 and 0 <= report["candidate"]["accuracy"] <= 1
    assert report["accuracy_drop_pp"] == pytest.approx(
        (report["reference"]["accuracy"] - report["candidate"]["accuracy"]) * 100)
    assert 0 < report["max_abs_error"] < 0.5 and report["mean_abs_error"] <= report["max_abs_error"]
    assert len(report["disagreements"]) == round((1 - report["top1_agreement"]) * report["num_samples"])
    assert sum(c["support"] for c in report["per_class"]) == 80


@pytest.mark.parametrize("reference, candidate", [
    ("model_fp32.tflite", "model_int8.tflite"),
    ("model_int8.tflite", "float.keras"),
    ("float.keras", "model_fp32.tflite"),
])
def test_any_pairing_works(parity_run, reference, candidate):
    result = _invoke(parity_run / reference, parity_run / candidate, "--data", parity_run, "--json", "--limit", 40)
    assert result.exit_code == 0, result.output
    report = _json(result)
    assert report["num_samples"] == 40
    if "int8" not in reference + candidate:
        # Float Keras and its float32 conversion compute the same function: identical decisions.
        assert report["top1_agreement"] == 1.0 and report["max_abs_error"] < 1e-4


def test_a_folder_of_class_subfolders_works_and_limit_applies(parity_run):
    data = Path(json.loads((parity_run / "split.json").read_text())["data_root"])
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", data,
                     "--limit", 30, "--json")
    assert result.exit_code == 0, result.output
    report = _json(result)
    assert report["num_samples"] == 30
    # A random subset, not the first 30 files (which would all be class '0').
    assert len(report["per_class"]) > 3


def test_unlabelled_folder_gives_agreement_but_no_accuracy(parity_run, tmp_path):
    import shutil

    data = Path(json.loads((parity_run / "split.json").read_text())["data_root"])
    for path in sorted(data.glob("*/*.png"))[:12]:
        shutil.copy(path, tmp_path / f"{path.parent.name}_{path.name}")
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    report = _json(result)
    assert report["num_samples"] == 12 and report["reference"]["accuracy"] is None
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", tmp_path,
                     "--max-accuracy-drop", 1)
    assert result.exit_code == 2
    assert "Error: --max-accuracy-drop needs labelled images" in result.output


def test_different_input_sizes_each_get_their_own_preprocessing(parity_run, tmp_path):
    from edgecnn.runtime.preprocess import InputSpec, prepare_image, read_image

    small = 12
    data_root = Path(json.loads((parity_run / "split.json").read_text())["data_root"])
    paths = sorted(data_root.glob("*/*.png"))[:64]
    x = np.stack([prepare_image(read_image(p), InputSpec(height=small, width=small)) for p in paths])
    model = _build_keras(small, seed=1)
    other = tmp_path / "small_int8.tflite"
    other.write_bytes(_to_tflite(model, x, int8=True, labels=LABELS, size=small, quantization="int8"))
    result = _invoke(parity_run / "float.keras", other, "--data", parity_run, "--json", "--limit", 20)
    assert result.exit_code == 0, result.output
    report = _json(result)
    assert report["reference"]["input"] == "16x16x3" and report["candidate"]["input"] == "12x12x3"
    assert any("input sizes differ" in note and "each model gets its own resize" in note for note in report["notes"])


def test_per_layer_names_real_layers_and_writes_csv(parity_run):
    import csv

    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", parity_run,
                     "--per-layer", "--limit", 40)
    assert result.exit_code == 0, result.output
    assert "worst layers by rmse/scale" in result.stdout
    rows = list(csv.DictReader((parity_run / "parity_layers_int8.csv").open()))
    real = {"image", "conv1", "conv2", "pool", "classifier"}
    assert rows, "the debugger reported no layers"
    for row in rows:
        assert set(row["layer"].split("+")) <= real, row
    assert {"conv1", "conv2", "classifier"} <= {name for row in rows for name in row["layer"].split("+")}
    ranked = [float(r["rmse_over_scale"]) for r in rows]
    assert ranked == sorted(ranked, reverse=True)
    # The worst layer is named on the terminal.
    assert rows[0]["layer"] in result.stdout


# --- gates through the command -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def untrained_int8(parity_run, tmp_path_factory):
    """An int8 model with the run's labels but untrained weights: it disagrees with float.keras."""
    from edgecnn.runtime.preprocess import InputSpec, prepare_image, read_image

    data_root = Path(json.loads((parity_run / "split.json").read_text())["data_root"])
    x = np.stack([prepare_image(read_image(p), InputSpec(height=SIZE, width=SIZE))
                  for p in sorted(data_root.glob("*/*.png"))[:32]])
    path = tmp_path_factory.mktemp("untrained") / "model_int8.tflite"
    path.write_bytes(_to_tflite(_build_keras(SIZE, seed=7), x, int8=True, labels=LABELS, size=SIZE,
                                quantization="int8"))
    return path


def test_gate_failure_exits_3_after_printing_the_report(parity_run, untrained_int8):
    result = _invoke(parity_run / "float.keras", untrained_int8, "--data", parity_run, "--max-disagreement", 0.05)
    assert result.exit_code == 3
    assert "top-1 agreement" in result.stdout  # the report is printed before the verdict
    assert "Error: parity gate failed: disagreement" in result.output
    assert "exceeds --max-disagreement 5.00%" in result.output


def test_accuracy_gate_failure_exits_3(parity_run, untrained_int8):
    result = _invoke(parity_run / "float.keras", untrained_int8, "--data", parity_run, "--json",
                     "--max-accuracy-drop", 0.5)
    assert result.exit_code == 3
    assert _json(result)["accuracy_drop_pp"] > 0.5  # --json stays clean on stdout
    assert "exceeds --max-accuracy-drop 0.5 pp" in result.stderr


def test_gates_pass_for_a_good_export(parity_run):
    result = _invoke(parity_run / "float.keras", parity_run / "model_fp32.tflite", "--data", parity_run,
                     "--max-disagreement", 0, "--max-accuracy-drop", 0)
    assert result.exit_code == 0, result.output


# --- bad input -----------------------------------------------------------------------------------------

def _relabelled(parity_run, tmp_path, labels) -> Path:
    """The run's float32 export with other labels in its metadata."""
    from edgecnn.tflite.metadata import embed_metadata, read_metadata

    md = read_metadata(parity_run / "model_fp32.tflite")
    md.labels = labels
    path = tmp_path / "relabelled.tflite"
    path.write_bytes(embed_metadata((parity_run / "model_fp32.tflite").read_bytes(), md))
    return path


def _five_classes(tmp_path) -> Path:
    from edgecnn.training.keras_compat import keras

    inp = keras.Input((SIZE, SIZE, 3))
    out = keras.layers.Dense(5, activation="softmax")(keras.layers.GlobalAveragePooling2D()(inp))
    path = tmp_path / "five.tflite"
    path.write_bytes(_to_tflite(keras.Model(inp, out), None, int8=False, labels=list("abcde"), size=SIZE,
                                quantization="none"))
    return path


def test_models_with_different_numbers_of_classes(parity_run, tmp_path):
    five = _five_classes(tmp_path)
    result = _invoke(parity_run / "float.keras", five, "--data", parity_run)
    assert result.exit_code == 2
    assert f"Error: {parity_run / 'float.keras'} has 10 classes but {five} has 5" in result.output


def test_models_with_different_labels(parity_run, tmp_path):
    relabelled = _relabelled(parity_run, tmp_path, [f"digit{i}" for i in range(10)])
    result = _invoke(parity_run / "model_int8.tflite", relabelled, "--data", parity_run)
    assert result.exit_code == 2
    assert "Error: the models have different labels:" in result.output
    assert f"{parity_run / 'model_int8.tflite'} has ['0', '1'" in result.output
    assert f"{relabelled} has ['digit0', 'digit1'" in result.output


def test_data_classes_that_are_not_the_models_labels(parity_run, tmp_path):
    import shutil

    data_root = Path(json.loads((parity_run / "split.json").read_text())["data_root"])
    for name, source in (("3", "3"), ("cat", "4")):
        (tmp_path / name).mkdir()
        for path in sorted((data_root / source).glob("*.png"))[:3]:
            shutil.copy(path, tmp_path / name / path.name)
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", tmp_path)
    assert result.exit_code == 2
    assert f"Error: folder {tmp_path} has classes ['cat'] (1) that are not among the models' labels" in result.output


def test_empty_data_folder(parity_run, tmp_path):
    (tmp_path / "cats").mkdir()  # a class folder without images is still empty
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", tmp_path)
    assert result.exit_code == 2
    assert f"Error: no images found in {tmp_path}; put images in one subfolder per class" in result.output


def test_missing_data_path(parity_run, tmp_path):
    result = _invoke(parity_run / "float.keras", parity_run / "model_int8.tflite", "--data", tmp_path / "nope")
    assert result.exit_code == 2
    assert f"Error: --data {tmp_path / 'nope'} does not exist" in result.output


@pytest.mark.parametrize("name, content, message", [
    ("model.tflite", b"this is not a flatbuffer at all", "is not a TFLite model (no 'TFL3' flatbuffer identifier)"),
    ("model.keras", b"PK but not really a zip", "is not a valid .keras archive"),
    ("model.onnx", b"\x08\x07", "is not a model edgecnn can compare (suffix '.onnx'); give a .keras or .tflite file"),
])
def test_a_file_that_is_not_a_model(parity_run, tmp_path, name, content, message):
    bogus = tmp_path / name
    bogus.write_bytes(content)
    result = _invoke(parity_run / "float.keras", bogus, "--data", parity_run)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert result.output.startswith("Error: ")


def test_missing_model_file(parity_run, tmp_path):
    result = _invoke(tmp_path / "gone.keras", parity_run / "model_int8.tflite", "--data", parity_run)
    assert result.exit_code == 2
    assert f"Error: model file {tmp_path / 'gone.keras'} does not exist" in result.output


def test_per_layer_without_a_float_keras_model(parity_run, tmp_path):
    import shutil

    data_root = Path(json.loads((parity_run / "split.json").read_text())["data_root"])
    shutil.copytree(data_root / "1", tmp_path / "1")
    result = _invoke(parity_run / "model_fp32.tflite", parity_run / "model_int8.tflite", "--data", tmp_path,
                     "--per-layer")
    assert result.exit_code == 2
    assert "Error: --per-layer needs the float Keras model" in result.output


@pytest.mark.parametrize("split", ["test", "val"])
def test_split_option_reads_that_split_of_split_json(parity_run, tmp_path, split):
    """Which images parity compared, against split.json: a copy whose test and val hold different classes."""
    import shutil
    from collections import Counter

    run = shutil.copytree(parity_run, tmp_path / "run")
    saved = json.loads((run / "split.json").read_text())
    held_out = saved["test"]
    saved["test"] = [item for item in held_out if item[1] % 2 == 0]  # even digits
    saved["val"] = [item for item in held_out if item[1] % 2 == 1]  # odd digits
    (run / "split.json").write_text(json.dumps(saved))
    result = _invoke(run / "float.keras", run / "model_int8.tflite", "--data", run, "--split", split, "--json")
    assert result.exit_code == 0, result.output
    report = _json(result)
    expected = Counter(LABELS[label] for _, label in saved[split])
    assert report["num_samples"] == sum(expected.values()) and report["data"].endswith(f"({split} split)")
    assert {row["label"]: row["support"] for row in report["per_class"] if row["support"]} == dict(expected)
    paths = {str(Path(saved["data_root"]) / rel) for rel, _ in saved[split]}
    assert {d["path"] for d in report["disagreements"]} <= paths
