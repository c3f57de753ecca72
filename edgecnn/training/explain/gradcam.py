"""Grad-CAM, CAM, activation maps and first-layer filters on a float tf_keras model.

Grad-CAM (Selvaraju et al. 2017): the gradient of the class's pre-softmax score with respect to
a convolutional feature map, averaged over places, weights that map's channels. Written here
with ``tf.GradientTape`` (about fifteen lines) rather than taken from tf-keras-vis: its last
release (0.8.7) is from March 2024, it is not on this project's package index, and it imports
``tensorflow.keras``, which would bypass ``keras_compat``'s one door to tf_keras.

For a model that ends in global average pooling + dense (every edgecnn architecture), Grad-CAM
on the last feature map equals CAM up to a positive factor (the gradient is ``W[k] / (H W)``
everywhere), so ``keras_cam`` is also the reference the TF-free .tflite CAM is checked against.
"""

from __future__ import annotations

import numpy as np

from edgecnn.errors import DataError, ModelError, closest
from edgecnn.training.keras_compat import keras, tf

_SPATIAL = ("Conv2D", "DepthwiseConv2D", "BatchNormalization", "ReLU", "Activation", "Add")


def spatial_layers(model) -> list[str]:
    """Names of layers with a 4-D output (N, H, W, C): the ones Grad-CAM and activation maps can use."""
    names = []
    for layer in model.layers:
        shape = getattr(layer, "output_shape", None)
        if isinstance(shape, tuple) and len(shape) == 4 and not isinstance(layer, keras.layers.InputLayer):
            names.append(layer.name)
    return names


def resolve_layer(model, name: str | None) -> str:
    """``name`` checked against the model (closest-name hint), or the last 4-D layer when None."""
    layers = spatial_layers(model)
    if not layers:
        raise ModelError(f"{model.name} has no layer with a spatial (H x W x C) output to explain")
    if name is None:
        return layers[-1]
    if name not in layers:
        all_names = [layer.name for layer in model.layers]
        why = "has no spatial output" if name in all_names else "does not exist"
        raise ModelError(f"layer {name!r} {why} in {model.name}{closest(name, layers)}; "
                         "list the usable ones with --list-layers")
    return name


def check_class(model, class_index: int | None) -> None:
    classes = int(model.output_shape[-1])
    if class_index is not None and not 0 <= class_index < classes:
        raise DataError(f"class index {class_index} is out of range; the model has {classes} classes "
                        f"(0..{classes - 1})")


def _score_layer(model):
    """The pre-softmax output: the layer feeding the final softmax when there is one, else the output."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Activation) and last.get_config().get("activation") == "softmax":
        return model.layers[-2].output
    return model.output


def grad_cam(model, inputs: np.ndarray, *, layer: str | None = None, class_index: int | None = None):
    """(maps N x h x w at the layer's resolution, class indices N, probabilities N x classes)."""
    check_class(model, class_index)
    name = resolve_layer(model, layer)
    probe = keras.Model(model.inputs, [model.get_layer(name).output, _score_layer(model), model.output])
    x = tf.convert_to_tensor(np.asarray(inputs, np.float32))
    with tf.GradientTape() as tape:
        features, logits, probs = probe(x, training=False)
        k = tf.argmax(probs, axis=-1) if class_index is None else tf.fill([tf.shape(x)[0]], class_index)
        k = tf.cast(k, tf.int32)
        chosen = tf.gather(logits, k, axis=1, batch_dims=1)
    grads = tape.gradient(chosen, features)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    maps = tf.reduce_sum(weights * features, axis=-1)
    return maps.numpy(), k.numpy(), probs.numpy()


def keras_cam(model, inputs: np.ndarray, class_index: int | None = None):
    """Class activation maps from the pooled layer's input and the last Dense layer's weights."""
    check_class(model, class_index)
    pool = next((l for l in model.layers if isinstance(l, keras.layers.GlobalAveragePooling2D)), None)
    dense = next((l for l in reversed(model.layers) if isinstance(l, keras.layers.Dense)), None)
    if pool is None or dense is None:
        raise ModelError(f"{model.name} has no global-pooling + dense head; use grad_cam")
    probe = keras.Model(model.inputs, [pool.input, model.output])
    features, probs = (t.numpy() for t in probe(np.asarray(inputs, np.float32), training=False))
    k = probs.argmax(-1) if class_index is None else np.full(len(probs), class_index)
    kernel = dense.get_weights()[0]  # (C, classes)
    return np.einsum("nhwc,cn->nhw", features, kernel[:, k]), k, probs


def activations(model, inputs: np.ndarray, layer: str) -> np.ndarray:
    """The named layer's output (N, H, W, C) for ``inputs``."""
    name = resolve_layer(model, layer)
    probe = keras.Model(model.inputs, model.get_layer(name).output)
    return probe(np.asarray(inputs, np.float32), training=False).numpy()


def first_conv_filters(model) -> np.ndarray:
    """The first Conv2D's kernel as (filters, kh, kw, in_channels)."""
    conv = next((l for l in model.layers if isinstance(l, keras.layers.Conv2D)
                 and not isinstance(l, keras.layers.DepthwiseConv2D)), None)
    if conv is None:
        raise ModelError(f"{model.name} has no Conv2D layer whose filters could be drawn")
    return np.transpose(conv.get_weights()[0], (3, 0, 1, 2))
