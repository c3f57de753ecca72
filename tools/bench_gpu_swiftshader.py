"""CPU against LiteRT's GPU accelerator for every registered architecture (issue 13's closing figures).

For each architecture: train on the built-in digits (16 px, a few epochs), export fp32, fp16 and int8,
then run every file on the CPU (XNNPACK) and on the GPU accelerator over the run's test split:
top-1 agreement, largest score difference, whether LiteRT says the GPU ran every op, and p50
latency of invoke + output read on each. On SwiftShader (a software Vulkan device, see
tools/gpu_emulation.sh) the GPU figures are for correctness, not speed.

    VK_DRIVER_FILES=/usr/lib/chromium/vk_swiftshader_icd.json python tools/bench_gpu_swiftshader.py --out /tmp/gpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from edgecnn.parity.data import load_parity_data  # noqa: E402
from edgecnn.runtime.classifier import TFLiteClassifier  # noqa: E402
from edgecnn.runtime.preprocess import prepare_image, read_image  # noqa: E402
from edgecnn.runtime.profile.profiler import ProfileSettings, profile_model  # noqa: E402
from edgecnn.training.export.exporter import export_modes  # noqa: E402
from edgecnn.training.fit.train import train_run  # noqa: E402
from edgecnn.training.models.mobilenet import MODELS  # noqa: E402

MODES = ("none", "fp16", "int8")


def compare(path: Path, batch: np.ndarray) -> dict:
    cpu, gpu = TFLiteClassifier(path, threads=2), TFLiteClassifier(path, threads=2, delegate="gpu")
    on_cpu, on_gpu = cpu.predict(batch), gpu.predict(batch)
    latency = {d: profile_model(path, ProfileSettings(threads=(2,), runs=200, warmup=20, delegate=d))["latency_ms"]["p50"]
               for d in ("cpu", "gpu")}
    return {"top1_agreement": float(np.mean(on_cpu.argmax(1) == on_gpu.argmax(1))),
            "max_score_diff": float(np.abs(on_cpu - on_gpu).max()),
            "fully_accelerated": gpu.interpreter.is_fully_accelerated(),
            "cpu_p50_ms": latency["cpu"], "gpu_p50_ms": latency["gpu"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="gpu-bench-")))
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    results = []
    for architecture in sorted(MODELS):
        run = train_run("digits", args.out / architecture, model=architecture, size=16, epochs=args.epochs,
                        batch_size=32, augment=False, seed=0, log=lambda message: None)
        data = load_parity_data(run.path, split="test")
        exports = export_modes(run.path, MODES, progress=False)
        spec = TFLiteClassifier(exports[0].path, threads=1).spec
        batch = np.stack([prepare_image(read_image(p), spec) for p in data.paths])
        for mode, exported in zip(MODES, exports):
            row = {"architecture": architecture, "mode": mode, "images": len(batch)} | compare(exported.path, batch)
            results.append(row)
            print(json.dumps(row), flush=True)
    (args.out / "gpu_swiftshader.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out / 'gpu_swiftshader.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
