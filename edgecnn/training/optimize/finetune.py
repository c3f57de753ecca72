"""Short fine-tunes for pruning and QAT: a run's split as model input, and the fit loop.

Images go through the device half's preprocessing (``edgecnn.runtime.preprocess``), so the
fine-tuned model sees exactly what the device will feed it. Pixels are kept as uint8 in the
model's size and channel order and normalized batch by batch (a quarter of the memory of
float32 arrays), with ``preprocess.normalize`` itself.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time

import numpy as np

from edgecnn.errors import DataError, RunDirError
from edgecnn.runtime.preprocess import InputSpec, normalize
from edgecnn.training.data.folders import decode_items, warn_skipped
from edgecnn.training.keras_compat import keras


@dataclasses.dataclass
class ImageSet:
    """Images in the model's size and channel order (uint8, N x H x W x C) and their labels."""

    pixels: np.ndarray
    labels: np.ndarray
    spec: InputSpec

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Normalized float32 model input for images ``start:stop``."""
        return normalize(self.pixels[start:stop], self.spec)


def load_images(items, spec: InputSpec, *, what: str = "images", limit: int | None = None,
                seed: int = 0) -> ImageSet:
    """(path, label) pairs decoded and resized for ``spec``; ``limit`` keeps a seeded random subset.

    Decoding is ``data.decode_items`` (the training loader's): unreadable files are skipped with
    one counted warning, as in training.
    """
    items = list(items)
    if not items:
        raise DataError(f"no {what} to load; check the run's split.json or the folder")
    if limit is not None and len(items) > limit:
        order = np.random.default_rng(seed).permutation(len(items))[:limit]
        items = [items[i] for i in sorted(order)]
    pixels, kept, skipped = decode_items(items, spec)
    warn_skipped(skipped)
    if not kept:
        raise DataError(f"none of the {len(items)} {what} could be read; check the files")
    return ImageSet(pixels, np.array([label for _, label in kept], np.int64), spec)


def load_split(run, split: str, spec: InputSpec, *, limit: int | None = None) -> ImageSet:
    """One split ('train', 'val', 'test') of a run directory, preprocessed for ``spec``."""
    items = run.split_items(split)
    if not items:
        raise RunDirError(f"{run.path}/split.json has no images in its {split} split; retrain with more data")
    return load_images(items, spec, what=f"{split} images", limit=limit)


class Batches(keras.utils.Sequence):
    """Shuffled, normalized batches of an ImageSet for ``model.fit``."""

    def __init__(self, images: ImageSet, batch_size: int, *, shuffle: bool = True, seed: int = 0):
        super().__init__()
        self.images = images
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(images))
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index):
        chosen = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return normalize(self.images.pixels[chosen], self.images.spec), self.images.labels[chosen]

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)


class EpochLines(keras.callbacks.Callback):
    """One progress line per epoch on stderr (stdout stays clean for --json)."""

    def __init__(self, stage: str, epochs: int, stream=None):
        super().__init__()
        self.stage, self.epochs = stage, epochs
        self.stream = stream or sys.stderr
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if isinstance(v, (int, float)))
        print(f"{self.stage} epoch {epoch + 1}/{self.epochs}  {shown}  ({time.perf_counter() - self._start:.1f}s)",
              file=self.stream, flush=True)


# Fine-tuning draws random numbers (dropout, shuffling). Seeding them makes a prune or QAT stage
# repeatable, and is required when TF_DETERMINISTIC_OPS=1: TensorFlow then refuses unseeded random ops.
FINE_TUNE_SEED = 0


def fit(model, train: ImageSet, *, epochs: int, batch_size: int, learning_rate: float, stage: str,
        val: ImageSet | None = None, callbacks=(), progress: bool = True, seed: int = FINE_TUNE_SEED):
    """Compile ``model`` with Adam at ``learning_rate`` and fit it; returns the Keras History."""
    keras.utils.set_random_seed(seed)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    all_callbacks = list(callbacks) + ([EpochLines(stage, epochs)] if progress else [])
    validation = Batches(val, batch_size, shuffle=False) if val is not None and len(val) else None
    return model.fit(Batches(train, batch_size), epochs=epochs, validation_data=validation,
                     callbacks=all_callbacks, verbose=0)


def steps_per_epoch(images: ImageSet, batch_size: int) -> int:
    return math.ceil(len(images) / batch_size)


def accuracy(model, images: ImageSet, batch_size: int = 64) -> float:
    """Top-1 accuracy of a Keras model on ``images`` (sklearn's accuracy_score)."""
    from sklearn.metrics import accuracy_score

    predictions = []
    for start in range(0, len(images), batch_size):
        scores = model(images.inputs(start, start + batch_size), training=False)
        predictions.append(np.argmax(np.asarray(scores), axis=-1))
    return float(accuracy_score(images.labels, np.concatenate(predictions)))
