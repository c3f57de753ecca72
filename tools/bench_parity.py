"""Benchmark: parity of an int8 .tflite against its float Keras model over 1,000 images at 96x96.

Target (issue 4): under a minute on 2 CPU cores. The run is built once (a registered
architecture at 96x96, trained briefly on procedural shapes so its scores are not uniform,
exported to full-integer int8), then ``edgecnn.parity`` is timed:

- ``load``: both models loaded (Keras file, interpreter), the part a CLI call pays once;
- ``parity``: decode + per-model preprocessing + Keras in batches + the interpreter one image
  at a time + the report, i.e. ``run_parity``; median of --repeats runs after one warm-up;
- ``cli``: the whole ``edgecnn parity`` command in a fresh process, TensorFlow import included.

    .venv/bin/python tools/bench_parity.py [--images 1000] [--size 96] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EPOCHS = 8


def build_run(root: Path, *, images: int, size: int, architecture: str) -> Path:
    import numpy as np
    import yaml

    from edgecnn.recipe import default_recipe
    from edgecnn.runtime.preprocess import read_image
    from edgecnn.training.data.builtin import write_shapes
    from edgecnn.training.data.run_inputs import input_spec
    from edgecnn.training.models.mobilenet import build_model
    from edgecnn.training.models.model_io import save_keras_model

    data = write_shapes(root / "shapes", size=size, per_class=images // 4 + 1, seed=0)
    labels = sorted(p.name for p in data.iterdir() if p.is_dir())
    items = [[str(p.relative_to(data)), i] for i, name in enumerate(labels) for p in sorted((data / name).iterdir())]
    rng = np.random.default_rng(0)
    order = rng.permutation(len(items))
    test = [items[i] for i in order[:images]]
    train = [items[i] for i in order[images:]] or test[:100]
    run = root / "run"
    run.mkdir()
    recipe = default_recipe()
    recipe.model.architecture, recipe.model.size = architecture, size
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict()))
    (run / "labels.txt").write_text("\n".join(labels) + "\n")
    (run / "split.json").write_text(json.dumps({"data_root": str(data), "train": train, "val": [], "test": test}))

    spec = input_spec(recipe)
    from edgecnn.runtime.preprocess import prepare_image

    fit = test[:400]
    x = np.stack([prepare_image(read_image(data / rel), spec) for rel, _ in fit])
    y = np.array([label for _, label in fit])
    model = build_model(architecture, num_classes=len(labels), size=size)
    model.compile("adam", "sparse_categorical_crossentropy")
    # Trained enough that scores are not uniform (an untrained model agrees with anything trivially).
    model.fit(x, y, epochs=EPOCHS, batch_size=32, verbose=0)
    save_keras_model(model, run / "float.keras")
    export_int8(run, model, x[:100], labels, spec)
    return run


def export_int8(run: Path, model, calibration, labels, spec) -> None:
    """Full-integer int8 with edgecnn metadata (the export command's int8 path, reduced to its core)."""
    from edgecnn.tflite.metadata import ModelMetadata, embed_metadata
    from edgecnn.training.keras_compat import tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([calibration[i:i + 1]] for i in range(len(calibration)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    md = ModelMetadata(labels=labels, height=spec.height, width=spec.width, quantization="int8",
                       quantization_source="ptq")
    (run / "model_int8.tflite").write_bytes(embed_metadata(converter.convert(), md))


def time_parity(run: Path, *, threads: int, repeats: int) -> dict:
    from edgecnn.parity.core import run_parity
    from edgecnn.parity.data import load_parity_data
    from edgecnn.training.evaluate.keras_predictor import load_predictor

    start = time.perf_counter()
    ref = load_predictor(run / "float.keras", threads=threads)
    cand = load_predictor(run / "model_int8.tflite", threads=threads)
    load_s = time.perf_counter() - start
    data = load_parity_data(run, "test")
    run_parity(ref, cand, data)  # warm-up: Keras traces its predict function, caches fill
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        report = run_parity(ref, cand, data)
        times.append(time.perf_counter() - start)
    return {"load_s": load_s, "parity_s": statistics.median(times), "parity_runs_s": times,
            "num_samples": report.num_samples, "top1_agreement": report.top1_agreement,
            "reference_accuracy": report.reference["accuracy"], "candidate_accuracy": report.candidate["accuracy"]}


def time_cli(run: Path, *, threads: int) -> float:
    command = [sys.executable, "-c", "from edgecnn.cli import main; main()", "parity", str(run / "float.keras"), str(run / "model_int8.tflite"),
               "--data", str(run), "--threads", str(threads), "--json"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--architecture", default="mobilenet_v1_tiny")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run = build_run(Path(tmp), images=args.images, size=args.size, architecture=args.architecture)
        result = time_parity(run, threads=args.threads, repeats=args.repeats)
        result["cli_s"] = time_cli(run, threads=args.threads)
    result.update(images=args.images, size=args.size, threads=args.threads, architecture=args.architecture)
    print(json.dumps(result, indent=2))
    print(f"parity over {result['num_samples']} images at {args.size}x{args.size} ({args.architecture}, int8 vs "
          f"float Keras, {args.threads} threads): {result['parity_s']:.1f} s median of {args.repeats} "
          f"({result['num_samples'] / result['parity_s']:.0f} images/s); models loaded in {result['load_s']:.1f} s; "
          f"whole CLI command {result['cli_s']:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
