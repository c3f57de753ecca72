"""Compact, quantization-friendly CNNs: MobileNetV1 (depthwise-separable) and MobileNetV2 (inverted residual).

Every model uses only ops that int8 TFLite and the Edge TPU run: Conv2D, DepthwiseConv2D,
BatchNormalization (folded into the convolution by the converter), ReLU6, Add,
GlobalAveragePooling2D, Dense and Softmax. No Lambda layers, no reshapes.

Two choices make them train on small data and small images:
- BatchNorm momentum defaults to 0.9 (Keras uses 0.99/0.999): with a few hundred steps the
  moving statistics would otherwise never catch up and validation stays at chance.
- Downsampling adapts to the input size: the design's five stride-2 stages are kept only as
  long as the last feature map stays >= 2 px; the earliest ones (the stem first) become
  stride 1 for small inputs, as CIFAR-style adaptations of these networks do.

Public API: ``MODELS``, ``DEFAULT_MODEL``, ``build_model``, ``model_stats``, and the head that
transfer learning (``pretrained.py``) puts on other backbones: ``classifier_head``, ``HEAD_LAYERS``.
"""

from __future__ import annotations

import math

from edgecnn.errors import ModelError
from edgecnn.model_sizes import check_size
from edgecnn.training.keras_compat import keras
from edgecnn.training.models.registry import MODELS, check_positive, get_spec, register_model

__all__ = ["MODELS", "DEFAULT_MODEL", "HEAD_LAYERS", "build_model", "classifier_head", "model_stats"]

# Small enough to train on 2 CPU cores in seconds, accurate enough for real data: the default
# of `edgecnn train` and recipes that name no model.
DEFAULT_MODEL = "mobilenet_v1_tiny"

_BN_EPSILON = 1e-3


def build_model(name: str, *, num_classes: int, size: int, channels: int = 3, alpha: float | None = None,
                depth: float | None = None, dropout: float | None = None, bn_momentum: float | None = None):
    """A fresh ``tf_keras.Model``: float input (size, size, channels) normalized, softmax output.

    Settings left as None take the registered model's defaults (see ``MODELS[name]``).
    """
    spec = get_spec(name)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes!r}")
    if channels not in (1, 3):
        raise ModelError(f"channels must be 1 (grayscale) or 3 (colour), got {channels!r}")
    strides = check_size(name, size, spec.max_strides)
    alpha = check_positive("alpha", spec.alpha if alpha is None else alpha)
    depth = check_positive("depth", spec.depth if depth is None else depth)
    dropout = spec.dropout if dropout is None else float(dropout)
    if not 0.0 <= dropout < 1.0:
        raise ModelError(f"--dropout must be in [0, 1), got {dropout}")
    bn_momentum = spec.bn_momentum if bn_momentum is None else float(bn_momentum)
    if not 0.0 < bn_momentum < 1.0:
        raise ModelError(f"--bn-momentum must be in (0, 1), got {bn_momentum}")
    return spec.builder(spec, num_classes=num_classes, size=size, channels=channels, alpha=alpha, depth=depth,
                        dropout=dropout, bn_momentum=bn_momentum, strides=strides, **spec.extra)


def model_stats(model) -> tuple[int, int]:
    """(parameters, multiply-accumulates per image) of a built model."""
    macs = 0
    for layer in model.layers:
        macs += _layer_macs(layer)
    return int(model.count_params()), int(macs)


def _layer_macs(layer) -> int:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        _, h, w, _ = layer.output_shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * int(layer.input_shape[-1]) * layer.depth_multiplier
    if isinstance(layer, keras.layers.Conv2D):
        _, h, w, cout = layer.output_shape
        kh, kw = layer.kernel_size
        return h * w * kh * kw * int(layer.input_shape[-1]) * cout // layer.groups
    if isinstance(layer, keras.layers.Dense):
        return int(layer.input_shape[-1]) * layer.units
    return 0


# --- building blocks ----------------------------------------------------------------------

def _make_divisible(value: float, divisor: int = 8) -> int:
    """Round channel counts to a multiple of 8 (as MobileNetV2 does), never dropping below 90%."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def _stride_plan(positions: int, strides: int) -> list[int]:
    """Stride of each of the design's downsampling positions: the earliest become 1 when fewer fit."""
    return [1] * (positions - strides) + [2] * strides


def _conv_bn_relu(x, filters, kernel, stride, name, bn_momentum):
    x = keras.layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _depthwise_bn_relu(x, stride, name, bn_momentum):
    x = keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=_BN_EPSILON, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


# The classifier head's layer names: everything else is the backbone (what transfer learning copies).
HEAD_LAYERS = ("pool", "dropout", "logits", "probabilities")


def classifier_head(x, num_classes, dropout):
    """GlobalAveragePooling -> Dropout -> Dense -> softmax, named as in ``HEAD_LAYERS``."""
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if dropout > 0:
        x = keras.layers.Dropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    # float32 even under mixed precision: softmax in float16 loses the small probabilities.
    return keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)


def _repeats(n: int, depth: float) -> int:
    return max(1, math.ceil(n * depth))


# --- MobileNetV1: depthwise-separable --------------------------------------------------------

# (pointwise filters, repeats) per stage; every stage but the first opens with a stride-2 block.
_V1_STAGES = ((64, 1), (128, 2), (256, 2), (512, 6), (1024, 2))


def _mobilenet_v1(spec, *, num_classes, size, channels, alpha, depth, dropout, bn_momentum, strides):
    plan = _stride_plan(len(_V1_STAGES), strides)  # stem + the four stage openings
    inputs = keras.Input((size, size, channels), name="image")
    x = _conv_bn_relu(inputs, _make_divisible(32 * alpha), 3, plan[0], "stem", bn_momentum)
    block = 0
    for stage, (filters, repeats) in enumerate(_V1_STAGES):
        for i in range(_repeats(repeats, depth)):
            block += 1
            stride = plan[stage] if (stage > 0 and i == 0) else 1
            x = _depthwise_bn_relu(x, stride, f"block{block}_dw", bn_momentum)
            x = _conv_bn_relu(x, _make_divisible(filters * alpha), 1, 1, f"block{block}_pw", bn_momentum)
    outputs = classifier_head(x, num_classes, dropout)
    return keras.Model(inputs, outputs, name=spec.name)


register_model("mobilenet_v1", family="mobilenet_v1",
               description="MobileNetV1: 13 depthwise-separable blocks (Howard et al. 2017)",
               alpha=1.0, depth=1.0, dropout=0.2)(_mobilenet_v1)
register_model("mobilenet_v1_tiny", family="mobilenet_v1",
               description="MobileNetV1 at width 0.25, half depth (7 blocks): seconds to train on a CPU",
               alpha=0.25, depth=0.5, dropout=0.1)(_mobilenet_v1)


# --- MobileNetV2: inverted residual ------------------------------------------------------------

# (expansion, output channels, repeats, opens with stride 2)
_V2_STAGES = ((1, 16, 1, False), (6, 24, 2, True), (6, 32, 3, True), (6, 64, 4, True),
              (6, 96, 3, False), (6, 160, 3, True), (6, 320, 1, False))


def _inverted_residual(x, expansion, filters, stride, name, bn_momentum):
    in_channels = int(x.shape[-1])
    y = x
    if expansion != 1:
        y = _conv_bn_relu(y, _make_divisible(in_channels * expansion), 1, 1, f"{name}_expand", bn_momentum)
    y = _depthwise_bn_relu(y, stride, f"{name}_dw", bn_momentum)
    # Linear bottleneck: no activation after the projection (the paper's point).
    y = keras.layers.Conv2D(filters, 1, padding="same", use_bias=False, name=f"{name}_project")(y)
    y = keras.layers.BatchNormalization(momentum=bn_momentum, epsilon=_BN_EPSILON, name=f"{name}_project_bn")(y)
    if stride == 1 and in_channels == filters:
        y = keras.layers.Add(name=f"{name}_add")([x, y])
    return y


def _mobilenet_v2(spec, *, num_classes, size, channels, alpha, depth, dropout, bn_momentum, strides,
                  head_channels=1280):
    opens_with_stride = [s for s in _V2_STAGES if s[3]]
    plan = _stride_plan(1 + len(opens_with_stride), strides)  # stem + the stride-2 stage openings
    inputs = keras.Input((size, size, channels), name="image")
    x = _conv_bn_relu(inputs, _make_divisible(32 * alpha), 3, plan[0], "stem", bn_momentum)
    block, position = 0, 0
    for expansion, filters, repeats, downsamples in _V2_STAGES:
        if downsamples:
            position += 1
        for i in range(_repeats(repeats, depth)):
            block += 1
            stride = plan[position] if (downsamples and i == 0) else 1
            x = _inverted_residual(x, expansion, _make_divisible(filters * alpha), stride, f"block{block}",
                                   bn_momentum)
    # As in the paper, the head keeps its width for alpha < 1 unless the variant says otherwise.
    head = _make_divisible(head_channels * max(alpha, 1.0))
    x = _conv_bn_relu(x, head, 1, 1, "head", bn_momentum)
    outputs = classifier_head(x, num_classes, dropout)
    return keras.Model(inputs, outputs, name=spec.name)


register_model("mobilenet_v2", family="mobilenet_v2",
               description="MobileNetV2: 17 inverted-residual blocks with linear bottlenecks (Sandler et al. 2018)",
               alpha=1.0, depth=1.0, dropout=0.2)(_mobilenet_v2)
register_model("mobilenet_v2_tiny", family="mobilenet_v2",
               description="MobileNetV2 at width 0.35, half depth, 256-wide head: small and quick",
               alpha=0.35, depth=0.5, dropout=0.1, head_channels=256)(_mobilenet_v2)
