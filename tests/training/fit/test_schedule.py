"""Training length and patience follow optimizer steps, not only epochs."""

import math

from edgecnn.training.fit.schedule import (
    AUTO_MAX_EPOCHS,
    AUTO_MIN_EPOCHS,
    AUTO_MIN_STEPS,
    MIN_PATIENCE_STEPS,
    auto_epochs,
    patience_in_epochs,
    steps_per_epoch,
)


def test_auto_epochs_keeps_30_epochs_for_the_digits_and_lengthens_small_folders():
    assert auto_epochs(1257, 32) == AUTO_MIN_EPOCHS  # 40 steps x 30 epochs = 1,200 steps already
    assert auto_epochs(140, 32) == math.ceil(AUTO_MIN_STEPS / 5)  # 5 steps per epoch
    assert auto_epochs(140, 32) * steps_per_epoch(140, 32) >= AUTO_MIN_STEPS
    assert auto_epochs(3, 32) == AUTO_MAX_EPOCHS  # one step per epoch: capped


def test_patience_counts_steps_not_only_epochs():
    assert patience_in_epochs(8, 40) == 8  # 320 steps of patience already
    assert patience_in_epochs(8, 5) == math.ceil(MIN_PATIENCE_STEPS / 5)  # 8 epochs would be 40 steps
    assert patience_in_epochs(30, 5) == 30  # a longer patience is kept
