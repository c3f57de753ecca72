"""Short fine-tunes for pruning and QAT: a run's split as model input, and the fit loop.

Images (``edgecnn.imagesets.ImageSet``) go through the device half's preprocessing
(``edgecnn.runtime.preprocess``), so the fine-tuned model sees exactly what the device will feed
it. Pixels are kept as uint8 in the model's size and channel order and normalized batch by batch
(a quarter of the memory of float32 arrays), with ``preprocess.normalize`` itself. Progress is
``training.fit.callbacks.EpochLine``, the one epoch printer.
"""

from __future__ import annotations

import numpy as np

# The decoded image set and its loaders are ``edgecnn.imagesets``' (TF-free, shared with calibration
# and parity); ``finetune.load_split`` / ``finetune.load_images`` stay the fine-tunes' entry points.
from edgecnn.imagesets import ImageSet, load_images, load_split  # noqa: F401
from edgecnn.runtime.preprocess import normalize
from edgecnn.training.fit.callbacks import EpochLine
from edgecnn.training.fit.schedule import steps_per_epoch
from edgecnn.training.keras_compat import keras


class Batches(keras.utils.Sequence):
    """Shuffled, normalized batches of an ImageSet for ``model.fit`` (sparse labels, no augmentation).

    A second feeder beside ``training.data.folders.make_dataset`` (``edgecnn train``'s), kept on
    purpose: the fine-tunes of pruning and QAT must not augment, use sparse labels, and draw their
    batch order from a seeded numpy generator, so a prune or QAT stage repeats exactly (the parity
    suite's tolerances were measured on those runs). ``make_dataset`` augments on the tf.data graph,
    one-hot encodes, and maps out of order for throughput.
    """

    def __init__(self, images: ImageSet, batch_size: int, *, shuffle: bool = True, seed: int = 0):
        super().__init__()
        self.images = images
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(images))
        self.on_epoch_end()

    def __len__(self) -> int:
        return steps_per_epoch(len(self.images), self.batch_size)

    def __getitem__(self, index):
        chosen = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        return normalize(self.images.pixels[chosen], self.images.spec), self.images.labels[chosen]

    def on_epoch_end(self):
        if self.shuffle:
            self._rng.shuffle(self._order)


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
    all_callbacks = list(callbacks) + ([EpochLine(None, epochs, stage=stage)] if progress else [])
    validation = Batches(val, batch_size, shuffle=False) if val is not None and len(val) else None
    return model.fit(Batches(train, batch_size), epochs=epochs, validation_data=validation,
                     callbacks=all_callbacks, verbose=0)


def accuracy(model, images: ImageSet, batch_size: int = 64) -> float:
    """Top-1 accuracy of a Keras model on ``images`` (sklearn's accuracy_score)."""
    from sklearn.metrics import accuracy_score

    predictions = []
    for start in range(0, len(images), batch_size):
        scores = model(images.inputs(start, start + batch_size), training=False)
        predictions.append(np.argmax(np.asarray(scores), axis=-1))
    return float(accuracy_score(images.labels, np.concatenate(predictions)))
