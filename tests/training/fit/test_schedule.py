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


def test_early_stopping_decides_only_in_the_second_half():
    from edgecnn.training.fit.schedule import earliest_stop

    assert earliest_stop(120) == 60 and earliest_stop(30) == 15 and earliest_stop(1) == 1


def test_checkpointer_waits_for_min_epochs_then_stops_after_patience(tmp_path):
    from edgecnn.training.fit.callbacks import Checkpointer, TrainState
    from edgecnn.training.keras_compat import keras

    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    model.compile(optimizer=keras.optimizers.legacy.Adam(0.001), loss="mse")
    state = TrainState()
    checkpointer = Checkpointer(tmp_path, state, patience=2, learning_rate=lambda step: 0.001, min_epochs=5)
    checkpointer.set_model(model)
    checkpointer.on_train_begin()
    stopped_at = None
    for epoch, val_loss in enumerate([1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]):  # no improvement after epoch 1
        checkpointer.on_epoch_begin(epoch)
        checkpointer.on_epoch_end(epoch, {"loss": 1.0, "val_loss": val_loss})
        if model.stop_training:
            stopped_at = epoch + 1
            break
    # Patience ran out after epoch 3, but early stopping decides only from epoch 5 on.
    assert stopped_at == 5 and state.stopped_early and state.best_epoch == 1
