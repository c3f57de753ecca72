"""`edgecnn parity` on a device install: two .tflite files compare with no TensorFlow, scikit-learn or tqdm.

Each check runs the CLI in a fresh interpreter whose import system refuses (ModuleNotFoundError, as
on an install of edgecnn[device] only) tensorflow, tf_keras, keras, tfmot, scikit-learn, matplotlib
and tqdm, and records every attempt to import them, including attempts a library would catch.
The models are the tiny hand-built .tflite classifiers of ``tflite_models`` (whose decisions are
known in advance), so the expected report is written down here, not computed by parity.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
from tflite_models import write_model

BLOCKED = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "sklearn", "matplotlib", "tqdm")
OPTIONAL = ("tqdm",)  # parity may try it (a progress bar when present) and must carry on without it
MARK = "DEVICE-INSTALL-PROBE "

SCRIPT = textwrap.dedent("""
    import json, sys

    BLOCKED = {blocked!r}
    attempts = []

    class DeviceInstall:
        # First on sys.meta_path: these packages are "not installed", whatever the venv holds.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                attempts.append(name)
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    already = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    sys.meta_path.insert(0, DeviceInstall())

    from edgecnn.cli import main
    try:
        main({args!r})
        code = 0
    except SystemExit as exc:
        code = exc.code
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print({mark!r} + json.dumps({{"code": code, "attempts": attempts, "loaded": loaded, "already": already}}),
          file=sys.stderr)
""")

COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}  # RGB
PER_CLASS = {"red": 3, "green": 3, "blue": 2}


def run_device_cli(args, blocked=BLOCKED) -> tuple[dict, subprocess.CompletedProcess]:
    script = SCRIPT.format(blocked=blocked, args=[str(a) for a in args], mark=MARK)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    probe = [line for line in done.stderr.splitlines() if line.startswith(MARK)]
    assert done.returncode == 0 and probe, done.stderr[-3000:]
    return json.loads(probe[-1][len(MARK):]), done


@pytest.fixture
def device_files(tmp_path):
    """An RGB float model, a BGR-ordered int8 model (same weights), and a folder of single-colour PNGs."""
    reference = write_model(tmp_path / "model_float32.tflite")
    candidate = write_model(tmp_path / "model_int8.tflite", kind="int8", channel_order="BGR")
    data = tmp_path / "images"
    for name, count in PER_CLASS.items():
        (data / name).mkdir(parents=True)
        bgr = np.full((12, 12, 3), COLORS[name][::-1], np.uint8)
        for i in range(count):
            assert cv2.imwrite(str(data / name / f"{i}.png"), bgr)
    return reference, candidate, data


def test_two_tflite_files_compare_without_tensorflow_sklearn_or_tqdm(device_files):
    reference, candidate, data = device_files
    probe, done = run_device_cli(["parity", reference, candidate, "--data", data, "--json"])
    assert probe["already"] == []  # the blocker was in place before anything of edgecnn loaded
    assert probe["code"] == 0, done.stdout + done.stderr[-2000:]
    tried = [m for m in probe["attempts"] if m.split(".")[0] not in OPTIONAL]
    assert tried == [], f"parity tried to import {tried} on a device install"
    assert probe["loaded"] == []

    report = json.loads(done.stdout)
    # The reference (RGB) gets every image right. The candidate reads the images as BGR, so it calls
    # red "blue" and blue "red": it agrees on the 3 green images only.
    assert report["num_samples"] == 8 and report["num_classes"] == 3
    assert report["top1_agreement"] == 3 / 8
    assert report["top5_agreement"] is None
    assert report["reference"]["accuracy"] == 1.0
    assert report["candidate"]["accuracy"] == 3 / 8
    assert report["accuracy_drop_pp"] == pytest.approx(62.5)
    per_class = {c["label"]: (c["support"], c["reference_accuracy"], c["candidate_accuracy"])
                 for c in report["per_class"]}
    assert per_class == {"red": (3, 1.0, 0.0), "green": (3, 1.0, 1.0), "blue": (2, 1.0, 0.0)}
    flips = sorted((Path(d["path"]).parent.name, d["reference"], d["candidate"]) for d in report["disagreements"])
    assert flips == [("blue", "blue", "red")] * 2 + [("red", "red", "blue")] * 3
    assert report["max_abs_error"] > 0.99  # a confident class swapped for another
    assert report["reference"]["kind"] == report["candidate"]["kind"] == "tflite"
    assert "parity: 8/8 images" in done.stderr  # tqdm's stand-in printed plain progress


def test_a_keras_model_asks_for_the_train_extra_in_one_line(device_files, tmp_path):
    _, candidate, data = device_files
    keras_file = tmp_path / "float.keras"
    keras_file.write_bytes(b"never opened")
    probe, done = run_device_cli(["parity", keras_file, candidate, "--data", data])
    assert probe["code"] == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert errors == ["Error: comparing the Keras model float.keras needs the Python module 'tensorflow', which "
                      "is not installed; run: pip install \"edgecnn[train]\"; two .tflite files compare without it"]
    assert "Traceback" not in done.stderr
    assert probe["loaded"] == []


def test_parity_attention_runs_on_a_device_install_without_scipy_either(device_files):
    """--attention explains both .tflite files with their CAM (runtime.explain) and ranks in numpy."""
    reference, candidate, data = device_files
    blocked = BLOCKED + ("scipy",)
    probe, done = run_device_cli(["parity", reference, candidate, "--data", data, "--attention", "--json"], blocked)
    assert probe["code"] == 0, done.stdout + done.stderr[-2000:]
    assert [m for m in probe["attempts"] if m.split(".")[0] not in OPTIONAL] == [] and probe["loaded"] == []
    attention = json.loads(done.stdout)["attention"]
    assert attention["reference_method"] == attention["candidate_method"] == "cam"
    assert attention["overall"]["images"] == 8 and set(attention["per_class"]) <= set(COLORS)
