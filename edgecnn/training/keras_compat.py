"""The one place that chooses Keras 2 (tf_keras) for the training half.

tensorflow-model-optimization rejects Keras 3 models, and TensorFlow 2.21 picks Keras 3
unless TF_USE_LEGACY_KERAS=1 is set *before TensorFlow is first imported*. Every module
of the training half gets TensorFlow and Keras from here:

    from edgecnn.training.keras_compat import tf, keras
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CPU feature notices, oneDNN) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

if os.environ.get("TF_USE_LEGACY_KERAS") != "1":  # pragma: no cover - only if a user overrode it
    raise ImportError("edgecnn's training half needs TF_USE_LEGACY_KERAS=1 (tf_keras); unset your override")

tf.get_logger().setLevel("ERROR")


def is_tf_keras_model(model) -> bool:
    """True for a model built with tf_keras (Keras 2); False for Keras 3 or anything else."""
    return isinstance(model, keras.Model)


__all__ = ["tf", "keras", "is_tf_keras_model"]
