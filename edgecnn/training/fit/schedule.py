"""How long to train and how long to wait, in optimizer steps rather than epochs. TF-free (`--help` reads it).

An epoch is a different amount of learning on every folder: the built-in digits give 40 steps per
epoch (1,257 images in batches of 32), a folder of 200 photos gives 5. Rules written in epochs
("30 epochs", "stop after 8 epochs without progress") that suit the first starve the second: 30
epochs of 5 steps are 150 steps, and 8 epochs of patience are 40 steps, about what the BatchNorm
statistics alone need to settle. So both rules take a floor in steps:

- ``auto_epochs``: ``train.epochs: null`` (the default) trains at least ``AUTO_MIN_EPOCHS`` epochs
  and at least ``AUTO_MIN_STEPS`` steps, at most ``AUTO_MAX_EPOCHS`` epochs. Digits: 30 epochs
  (1,200 steps), as before. 200 photos: 120 epochs (600 steps), about a minute on 2 cores.
- ``patience_in_epochs``: early stopping waits the recipe's epochs, but never fewer than
  ``MIN_PATIENCE_STEPS`` steps.
- ``earliest_stop``: early stopping decides only in the second half of the schedule. Before that
  the cosine learning rate is above half its peak, and a validation loss that stops falling says
  more about that rate (and, on 30 validation images, about noise) than about the end of
  progress. Measured: Fashion-MNIST sneaker vs ankle boot, 2 x 100, seed 1 stopped at epoch 22
  of 120 and restored epoch 2 (val_loss 0.177 on 30 images), test 86.7%.

Measured (closing note of the training issue, `tools/bench_small_data.py`): digits 3 vs 8, 2 x 100
images, seed 0: 93.3% with 30 epochs, 100% with 100 epochs.
"""

from __future__ import annotations

import math

AUTO_MIN_EPOCHS = 30
AUTO_MIN_STEPS = 600
AUTO_MAX_EPOCHS = 200
# Early stopping waits at least this many steps without a lower validation loss: 8 epochs of 40
# steps (the digits) are a fair test of "no more progress", 8 epochs of 5 steps are not.
MIN_PATIENCE_STEPS = 100
EARLIEST_STOP_FRACTION = 0.5


def steps_per_epoch(images: int, batch_size: int) -> int:
    """Batches per epoch of ``images`` images, for both feeders (``make_dataset`` and finetune's ``Batches``)."""
    return max(1, math.ceil(images / batch_size))


def auto_epochs(train_images: int, batch_size: int) -> int:
    """Epochs for ``train.epochs: null``: at least AUTO_MIN_STEPS steps and AUTO_MIN_EPOCHS epochs."""
    wanted = math.ceil(AUTO_MIN_STEPS / steps_per_epoch(train_images, batch_size))
    return min(AUTO_MAX_EPOCHS, max(AUTO_MIN_EPOCHS, wanted))


def earliest_stop(epochs: int) -> int:
    """The first epoch after which early stopping may end the run: half of the planned epochs."""
    return math.ceil(epochs * EARLIEST_STOP_FRACTION)


def patience_in_epochs(patience: int, steps: int) -> int:
    """The recipe's patience in epochs, but never fewer than MIN_PATIENCE_STEPS steps."""
    return max(int(patience), math.ceil(MIN_PATIENCE_STEPS / max(1, steps)))
