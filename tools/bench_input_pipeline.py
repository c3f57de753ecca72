"""Is edgecnn's input pipeline the bottleneck? Training images/s: image folder pipeline vs in-memory arrays.

Both sides train the same architecture with the same optimizer, loss and batch size on the same
images; only the input differs:
- pipeline: what ``edgecnn train`` does: the image folder decoded once by runtime.preprocess, then
  tf.data (shuffle, batch, [augmentation], normalize, prefetch) fed to ``model.fit``;
- arrays:   the same images, already normalized float32 numpy arrays, fed to ``model.fit`` directly.
The two alternate epoch by epoch (so load from other processes hits both alike); the first epochs
(tracing) are warm-up and not counted; the figure is the median images/s over the measured epochs.
The one-time decode of the folder is reported separately.

    .venv/bin/python tools/bench_input_pipeline.py                      # digits at 32 px, 10 + 2 epochs
    .venv/bin/python tools/bench_input_pipeline.py --data shapes --size 64 --epochs 6 --json
Target: pipeline / arrays >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="digits", help="image folder or built-in dataset (default digits)")
    parser.add_argument("--model", default=None, help="architecture (default: edgecnn's default)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10, help="measured epochs per side (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2, help="epochs per side not counted")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    return parser.parse_args(argv)


class EpochTimer:
    """Wall time and process CPU time (all threads) of each epoch of a fit call."""

    def __init__(self, keras):
        timer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                timer._start = (time.perf_counter(), time.process_time())

            def on_epoch_end(self, epoch, logs=None):
                timer.seconds.append(time.perf_counter() - timer._start[0])
                timer.cpu_seconds.append(time.process_time() - timer._start[1])

        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []
        self._start = (0.0, 0.0)
        self.callback = _Callback()


def main(argv=None) -> dict:
    args = parse_args(argv)
    from edgecnn.recipe import default_recipe
    from edgecnn.runtime.preprocess import normalize
    from edgecnn.training.data import folders as data_mod
    from edgecnn.training.keras_compat import keras
    from edgecnn.training.models.mobilenet import DEFAULT_MODEL, build_model

    recipe = default_recipe()
    recipe.model.size = args.size
    spec = data_mod.input_spec(recipe)
    root, _ = data_mod.resolve_data(args.data)
    folder = data_mod.scan_folder(root)
    started = time.perf_counter()
    pixels, kept, _ = data_mod.decode_items(folder.items, spec)
    decode_seconds = time.perf_counter() - started
    labels = [label for _, label in kept]
    num_classes = len(folder.labels)
    x = normalize(pixels, spec)
    y = keras.utils.to_categorical(labels, num_classes)

    def compiled_model():
        model = build_model(args.model or DEFAULT_MODEL, num_classes=num_classes, size=args.size)
        model.compile(optimizer=keras.optimizers.legacy.Adam(1e-3), loss="categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    keras.utils.set_random_seed(0)
    sides = {}
    for augment in (False, True):
        dataset = data_mod.make_dataset(pixels, labels, spec, num_classes=num_classes, batch_size=args.batch_size,
                                        training=True, augment=augment, flip=False, seed=0)
        sides[f"pipeline{'+augment' if augment else ''}"] = (compiled_model(), lambda m, d=dataset, t=None: m.fit(
            d, epochs=1, verbose=0, callbacks=[t.callback]))
    sides["arrays"] = (compiled_model(), lambda m, t=None: m.fit(
        x, y, batch_size=args.batch_size, shuffle=True, epochs=1, verbose=0, callbacks=[t.callback]))
    timers = {name: EpochTimer(keras) for name in sides}
    for round_ in range(args.warmup + args.epochs):
        for name, (model, fit) in sides.items():
            fit(model, t=timers[name])
        print(f"round {round_ + 1}/{args.warmup + args.epochs}: "
              + "  ".join(f"{n} {t.seconds[-1]:.2f}s" for n, t in timers.items()), file=sys.stderr)

    n = len(x)
    rates = {name: n / statistics.median(t.seconds[args.warmup:]) for name, t in timers.items()}
    # Paired: each round's pipeline epoch against the arrays epoch run right beside it (same machine load).
    paired = {name: statistics.median(a / p for a, p in zip(timers["arrays"].seconds[args.warmup:],
                                                             t.seconds[args.warmup:]))
              for name, t in timers.items() if name != "arrays"}
    cpu_per_image_ms = {name: 1000 * statistics.median(t.cpu_seconds[args.warmup:]) / n for name, t in timers.items()}
    result = {
        "data": str(args.data), "images": n, "size": args.size, "batch_size": args.batch_size,
        "model": args.model or DEFAULT_MODEL, "measured_epochs": args.epochs, "warmup_epochs": args.warmup,
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "ratio_pipeline_vs_arrays": round(rates["pipeline"] / rates["arrays"], 3),
        "ratio_pipeline_augment_vs_arrays": round(rates["pipeline+augment"] / rates["arrays"], 3),
        "paired_ratio_pipeline_vs_arrays": round(paired["pipeline"], 3),
        "paired_ratio_pipeline_augment_vs_arrays": round(paired["pipeline+augment"], 3),
        "cpu_ms_per_image": {k: round(v, 3) for k, v in cpu_per_image_ms.items()},
        # CPU work per image barely moves with other processes' load, unlike wall time on a shared machine.
        "cpu_ratio_pipeline_vs_arrays": round(cpu_per_image_ms["arrays"] / cpu_per_image_ms["pipeline"], 3),
        "decode_once_seconds": round(decode_seconds, 3),
        "decode_images_per_s": round(len(folder.items) / decode_seconds, 1),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name, rate in rates.items():
            print(f"{name:<18} {rate:10.1f} images/s  {cpu_per_image_ms[name]:.3f} CPU-ms/image")
        print(f"pipeline / arrays:           {result['ratio_pipeline_vs_arrays']:.3f} of medians, "
              f"{result['paired_ratio_pipeline_vs_arrays']:.3f} paired per round  (target >= 0.9)")
        print(f"pipeline / arrays by CPU work per image: {result['cpu_ratio_pipeline_vs_arrays']:.3f}")
        print(f"pipeline+augment / arrays:   {result['ratio_pipeline_augment_vs_arrays']:.3f} of medians, "
              f"{result['paired_ratio_pipeline_augment_vs_arrays']:.3f} paired per round")
        print(f"one-time decode of {len(folder.items)} files: {decode_seconds:.2f}s "
              f"({result['decode_images_per_s']:.0f} images/s)")
    return result


if __name__ == "__main__":
    main()
