"""The device half never imports TensorFlow: import all of it and run `run` and `classify` in a
fresh interpreter with an import hook that records any attempt to import tensorflow or Keras."""

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
from tflite_models import write_model

FORBIDDEN = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization")

SCRIPT = textwrap.dedent("""
    import importlib, json, pkgutil, sys

    FORBIDDEN = {forbidden!r}
    attempts = []

    class Recorder:
        # Sees every import that reaches the import system, including ones a library would catch.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                attempts.append(name)
            return None

    sys.meta_path.insert(0, Recorder())

    import edgecnn.runtime
    for module in pkgutil.walk_packages(edgecnn.runtime.__path__, "edgecnn.runtime."):
        importlib.import_module(module.name)
    for name in ("run_cmd", "doctor_cmd", "profile_cmds", "inspect_cmd"):
        try:
            importlib.import_module("edgecnn.cli." + name)
        except ModuleNotFoundError as exc:
            if exc.name != "edgecnn.cli." + name:  # a command module another helper has not written yet is fine
                raise

    from edgecnn.cli import cli
    codes = {{}}
    for args in ({run_args!r}, {classify_args!r}, ["doctor"]):
        try:
            cli.main(args=args, prog_name="edgecnn", standalone_mode=False)
            codes[args[0]] = 0
        except SystemExit as exc:
            codes[args[0]] = exc.code
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    print(json.dumps({{"attempts": attempts, "loaded": loaded, "codes": codes}}))
""")


def test_runtime_run_and_classify_never_import_tensorflow(tmp_path):
    model = write_model(tmp_path / "m.tflite", kind="int8")
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (32, 24))
    for _ in range(3):
        writer.write(np.full((24, 32, 3), 200, np.uint8))
    writer.release()
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.full((10, 10, 3), 90, np.uint8))
    script = SCRIPT.format(forbidden=FORBIDDEN,
                           run_args=["run", str(model), "--source", str(clip), "--headless", "--json"],
                           classify_args=["classify", str(model), str(image), "--json"])
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["codes"] == {"run": 0, "classify": 0, "doctor": 0}
    assert report["attempts"] == [], f"the device half tried to import {report['attempts']}"
    assert report["loaded"] == []
    # The commands really ran: their output precedes the report.
    assert '"type": "summary"' in done.stdout and '"path": ' in done.stdout
