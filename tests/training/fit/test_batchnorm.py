"""BatchNorm re-estimation: after a few steps, inference mode must compute what training mode computes."""

import numpy as np
import pytest

from edgecnn.training.fit.batchnorm import BatchNormEstimator, BatchNormRecalibration, batchnorm_layers
from edgecnn.training.keras_compat import keras, tf
from edgecnn.training.models import build_model


def _few_step_fit(callbacks):
    """Two epochs of one step each: the moving statistics have moved 1 - 0.9**2 = 19% of the way."""
    keras.utils.set_random_seed(0)
    model = build_model("mobilenet_v1_tiny", num_classes=2, size=16, channels=1, dropout=0.0)
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(24, 16, 16, 1)).astype(np.float32)
    y = np.eye(2, dtype=np.float32)[np.arange(24) % 2]
    model.compile(optimizer=keras.optimizers.legacy.Adam(0.004), loss="categorical_crossentropy")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(24)
    model.fit(dataset, epochs=2, verbose=0, validation_data=dataset,
              callbacks=[cb(dataset) for cb in callbacks])
    return model, x


def test_without_re_estimation_inference_mode_is_far_from_training_mode():
    # The failure the re-estimation fixes, shown on the same setup: so the test below can fail.
    model, x = _few_step_fit([])
    gap = np.abs(model(x, training=False).numpy() - model(x, training=True).numpy()).max()
    assert gap > 0.05


def test_re_estimation_makes_inference_mode_match_training_mode():
    # One batch holds all 24 images, so the pooled statistics equal that batch's own.
    model, x = _few_step_fit([BatchNormRecalibration])
    np.testing.assert_allclose(model(x, training=False).numpy(), model(x, training=True).numpy(), atol=2e-3)


def test_pooled_statistics_over_several_batches_equal_the_whole_sets():
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(50, 4, 4, 3)).astype(np.float32)
    used = BatchNormEstimator(model).estimate(tf.data.Dataset.from_tensor_slices(x).batch(16))
    layer = batchnorm_layers(model)[0]
    assert used == 50
    np.testing.assert_allclose(layer.moving_mean.numpy(), x.mean(axis=(0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(layer.moving_variance.numpy(), x.var(axis=(0, 1, 2)), rtol=1e-4)


def test_estimation_stops_after_max_images():
    inputs = keras.Input((2, 2, 1))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
    x = np.concatenate([np.zeros((32, 2, 2, 1)), np.full((32, 2, 2, 1), 10.0)]).astype(np.float32)
    used = BatchNormEstimator(model).estimate(tf.data.Dataset.from_tensor_slices(x).batch(16), max_images=32)
    assert used == 32
    assert batchnorm_layers(model)[0].moving_mean.numpy() == pytest.approx([0.0])
