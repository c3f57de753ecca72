"""Start-up cost of the device half: import + model load time and resident memory (issue 5).

    python tools/bench_device_startup.py [--runs 7] [--tensorflow-runs 3]

Each run is a fresh Python process that times, from its first line: importing the device half
(edgecnn.runtime.classifier: numpy, OpenCV, LiteRT), loading the 96x96 int8 model
(TFLiteClassifier: read, check, metadata, interpreter, allocate) and the first inference; then
reports its resident memory (VmRSS) and peak (VmHWM). The same is measured for an empty
Python and for TensorFlow's tf.lite.Interpreter, the runtime edgecnn avoids on devices.
Figures are medians over the runs, after one warm-up run (which fills the OS file cache).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import DEFAULT_DIR, ensure_model  # noqa: E402

_MEMORY = """
def _memory_mb():
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]
"""

_DEVICE = _MEMORY + """
import time
t0 = time.perf_counter()
from edgecnn.runtime.classifier import TFLiteClassifier
t1 = time.perf_counter()
classifier = TFLiteClassifier(MODEL)
t2 = time.perf_counter()
import numpy as np
classifier.predict_frame(np.zeros((480, 640, 3), np.uint8))
t3 = time.perf_counter()
rss, hwm = _memory_mb()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_inference_s": t3 - t2,
                  "import_plus_load_s": t2 - t0, "rss_mb": rss, "peak_rss_mb": hwm}))
"""

_TENSORFLOW = _MEMORY + """
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
t0 = time.perf_counter()
import tensorflow as tf
t1 = time.perf_counter()
interpreter = tf.lite.Interpreter(model_path=MODEL)
interpreter.allocate_tensors()
t2 = time.perf_counter()
rss, hwm = _memory_mb()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "import_plus_load_s": t2 - t0,
                  "rss_mb": rss, "peak_rss_mb": hwm}))
"""

_EMPTY = _MEMORY + """
rss, hwm = _memory_mb()
print(json.dumps({"rss_mb": rss, "peak_rss_mb": hwm}))
"""


def measure(script: str, model: Path, runs: int) -> dict:
    code = f"import json\nMODEL = {str(model)!r}\n" + script
    rows = []
    for run in range(runs + 1):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        if run:  # run 0 warms the file cache
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {key: round(statistics.median(r[key] for r in rows), 4) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tensorflow-runs", type=int, default=3, help="0 skips the TensorFlow comparison")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args()
    model = ensure_model(args.dir)
    result = {"benchmark": "device-startup", "model": model.name, "model_kb": round(model.stat().st_size / 1024, 1),
              "runs": args.runs, "empty_python": measure(_EMPTY, model, args.runs),
              "device_half": measure(_DEVICE, model, args.runs)}
    if args.tensorflow_runs:
        result["tensorflow_lite"] = measure(_TENSORFLOW, model, args.tensorflow_runs)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
