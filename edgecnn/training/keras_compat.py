"""The one place that chooses Keras 2 (tf_keras) for the training half.

tensorflow-model-optimization rejects Keras 3 models, and TensorFlow 2.21 picks Keras 3
unless TF_USE_LEGACY_KERAS=1 is set *before TensorFlow is first imported*. Every module
of the training half gets TensorFlow and Keras from here:

    from edgecnn.training.keras_compat import tf, keras
"""

import contextlib
import os
import sys
import tempfile

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TensorFlow's C++ start-up chatter (CPU feature notices, oneDNN) is noise for our users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def quiet_native_stderr():
    """Hold back what native code writes to stderr (fd 2) inside the block; replay it if the block fails.

    TensorFlow's C++ side logs through absl before its log level applies ("oneDNN custom
    operations are on", "Could not find cuda drivers", "failed call to cuInit"): the
    environment variables cannot silence those lines, only a redirect can. Set
    EDGECNN_TF_LOGS=1 to see them.
    """
    if os.environ.get("EDGECNN_TF_LOGS") == "1":
        yield
        return
    try:
        stderr_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # pytest capture or an embedded interpreter
        yield
        return
    sys.stderr.flush()
    saved = os.dup(stderr_fd)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), stderr_fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, stderr_fd)
            held.seek(0)
            sys.stderr.write(held.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, stderr_fd)
            os.close(saved)


with quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    # The first device query is where the CUDA probe logs its failure on CPU-only machines.
    tf.config.list_physical_devices("GPU")

if os.environ.get("TF_USE_LEGACY_KERAS") != "1":  # pragma: no cover - only if a user overrode it
    raise ImportError("edgecnn's training half needs TF_USE_LEGACY_KERAS=1 (tf_keras); unset your override")

tf.get_logger().setLevel("ERROR")


def is_tf_keras_model(model) -> bool:
    """True for a model built with tf_keras (Keras 2); False for Keras 3 or anything else."""
    return isinstance(model, keras.Model)


__all__ = ["tf", "keras", "is_tf_keras_model", "quiet_native_stderr"]
