"""Training throughput on a GPU: images/s for fp32, mixed precision and XLA, and whether tf.data keeps up.

For each variant the script builds edgecnn's model (``training.models.build_model``), compiles it the
way ``edgecnn train`` does (legacy Adam, categorical cross-entropy), and times ``model.fit`` on
edgecnn's own tf.data feeder (``training.data.folders.make_dataset``: shuffle, augmentation on the
graph, normalization, prefetch) over synthetic uint8 images held in memory, as training holds a
decoded folder. The first epoch (tracing, XLA compilation, cuDNN autotuning) is the warm-up and is
not counted; the figure is the median images/s of the timed epochs.

The input pipeline is measured alone too: iterating the same dataset without a model. If it
delivers fewer images/s than a training variant consumes, tf.data is the bottleneck and the GPU
waits; the report says so.

With no GPU, the script says so plainly and exits 0 after measuring nothing, unless ``--cpu`` asks
for the same figures on the CPU (useful only to check that the script runs).

    .venv/bin/python tools/bench_train_gpu.py                      # on a GPU machine
    .venv/bin/python tools/bench_train_gpu.py --size 224 --alpha 1.0 --model mobilenet_v2 --batch-size 128
    .venv/bin/python tools/bench_train_gpu.py --cpu --images 256 --epochs 2 --size 32   # smoke run on a CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from edgecnn.runtime.preprocess import InputSpec
from edgecnn.training.data.folders import make_dataset
from edgecnn.training.keras_compat import keras, tf
from edgecnn.training.models import build_model

VARIANTS = ("fp32", "mixed_float16", "xla", "mixed_float16+xla")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v1")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--images", type=int, default=4096, help="synthetic images per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs after one warm-up epoch")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--cpu", action="store_true", help="measure on the CPU when there is no GPU")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch (perf_counter)."""

    def __init__(self):
        super().__init__()
        self.seconds = []
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def dataset(args, pixels, labels):
    spec = InputSpec(height=args.size, width=args.size, channels=3, channel_order="RGB",
                     mean=(127.5,) * 3, std=(127.5,) * 3, resize="area")
    return make_dataset(pixels, labels, spec, num_classes=args.classes, batch_size=args.batch_size, training=True,
                        augment=True, flip=True, seed=0)


def input_pipeline_rate(args, pixels, labels) -> float:
    """Images/s tf.data delivers with no model consuming them (median of the timed passes)."""
    data = dataset(args, pixels, labels)
    for _ in data:  # warm-up pass: builds the graph, fills the prefetch buffer
        pass
    rates = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for _ in data:
            pass
        rates.append(len(pixels) / (time.perf_counter() - start))
    return statistics.median(rates)


def training_rate(args, variant: str, pixels, labels) -> float:
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("mixed_float16" if "mixed" in variant else "float32")
    try:
        model = build_model(args.model, num_classes=args.classes, size=args.size, channels=3, alpha=args.alpha)
        optimizer = keras.optimizers.legacy.Adam(1e-3)
        if "mixed" in variant:
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
        model.compile(optimizer=optimizer, loss="categorical_crossentropy", jit_compile="xla" in variant)
        timer = EpochTimer()
        model.fit(dataset(args, pixels, labels), epochs=args.epochs + 1, callbacks=[timer], verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return statistics.median(len(pixels) / s for s in timer.seconds[1:])


def main(argv=None) -> int:
    args = parse_args(argv)
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not args.cpu:
        print("no GPU found by TensorFlow (tf.config.list_physical_devices('GPU') is empty): nothing measured. "
              "Run this on a machine with an NVIDIA GPU and a CUDA build of TensorFlow "
              "(pip install 'tensorflow[and-cuda]==2.21.*'), or pass --cpu for a smoke run.")
        return 0
    device = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus] or ["CPU"]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(args.images, args.size, args.size, 3), dtype=np.uint8)
    labels = rng.integers(0, args.classes, size=args.images)
    feed = input_pipeline_rate(args, pixels, labels)
    rows = [{"variant": v, "images_per_s": training_rate(args, v, pixels, labels)} for v in args.variants]
    for row in rows:
        row["input_bound"] = feed < 1.1 * row["images_per_s"]  # tf.data within 10% of what training consumes
    result = {"device": device, "model": args.model, "alpha": args.alpha, "size": args.size,
              "batch_size": args.batch_size, "images": args.images, "timed_epochs": args.epochs,
              "input_pipeline_images_per_s": feed, "rows": rows}
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    print(f"{', '.join(device)}: {args.model} alpha {args.alpha} at {args.size}px, batch {args.batch_size}, "
          f"median of {args.epochs} epochs after a warm-up")
    print(f"tf.data alone: {feed:,.0f} images/s")
    base = rows[0]["images_per_s"] if rows and rows[0]["variant"] == "fp32" else None
    for row in rows:
        speedup = f"  {row['images_per_s'] / base:.2f}x fp32" if base else ""
        warning = "  <- input-bound: tf.data is the bottleneck" if row["input_bound"] else ""
        print(f"{row['variant']:<18} {row['images_per_s']:>10,.0f} images/s{speedup}{warning}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
