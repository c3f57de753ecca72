"""Tiny, real .tflite classifiers for device-half tests, built without TensorFlow.

The graph is ``AVERAGE_POOL_2D`` over the whole image -> ``FULLY_CONNECTED`` -> ``SOFTMAX``,
written with LiteRT's own flatbuffer schema (ai_edge_litert.schema_py_generated), so making
one takes milliseconds and device tests never import TensorFlow. Its behaviour is known in
advance: the fully connected weights are ``gain * identity`` (one class per input channel,
plus optional extra classes with zero weights), so a mostly-red image is class 0 in an RGB
model and class 2 in a BGR model. That lets tests check channel order and normalization.

``kind="int8"`` builds a full-integer model (int8 input and output, int8 weights, int32 bias)
with the scales a TFLite converter would choose; ``kind="float"`` a float32 one.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

from edgecnn.tflite.metadata import ModelMetadata, embed_metadata

# Input scale of int8 models: inputs normalized to -1..1 (mean=std=127.5) fill the int8 range.
INPUT_SCALE = 1.0 / 127.5
INPUT_ZERO_POINT = 0


def build_classifier(height=8, width=8, channels=3, classes=3, *, kind="float", gain=4.0,
                     batch=1, custom_op: str | None = None) -> bytes:
    """The bytes of a tiny classifier .tflite (no edgecnn metadata).

    ``custom_op`` appends an unknown custom op after the softmax, giving a model that parses
    but that no interpreter can prepare (for the "cannot be allocated" error).
    """
    if classes < channels:
        raise ValueError("classes must be >= channels (one class per channel, extras get zero weight)")
    weights = np.zeros((classes, channels), np.float32)
    weights[np.arange(channels), np.arange(channels)] = gain
    builder = _GraphBuilder()
    int8 = kind == "int8"
    if int8:
        in_q = (INPUT_SCALE, INPUT_ZERO_POINT)
        w_scale = gain / 127.0
        logit_scale = 2 * gain / 255.0  # logits lie in -gain..gain
        x = builder.tensor("input", [batch, height, width, channels], schema.TensorType.INT8, quant=in_q)
        pooled = builder.tensor("pooled", [batch, 1, 1, channels], schema.TensorType.INT8, quant=in_q)
        w = builder.tensor("weights", [classes, channels], schema.TensorType.INT8, quant=(w_scale, 0),
                           data=np.rint(weights / w_scale).astype(np.int8))
        b = builder.tensor("bias", [classes], schema.TensorType.INT32, quant=(in_q[0] * w_scale, 0),
                           data=np.zeros(classes, np.int32))
        logits = builder.tensor("logits", [batch, classes], schema.TensorType.INT8, quant=(logit_scale, 0))
        probs = builder.tensor("probs", [batch, classes], schema.TensorType.INT8, quant=(1.0 / 256.0, -128))
    else:
        x = builder.tensor("input", [batch, height, width, channels], schema.TensorType.FLOAT32)
        pooled = builder.tensor("pooled", [batch, 1, 1, channels], schema.TensorType.FLOAT32)
        w = builder.tensor("weights", [classes, channels], schema.TensorType.FLOAT32, data=weights)
        b = builder.tensor("bias", [classes], schema.TensorType.FLOAT32, data=np.zeros(classes, np.float32))
        logits = builder.tensor("logits", [batch, classes], schema.TensorType.FLOAT32)
        probs = builder.tensor("probs", [batch, classes], schema.TensorType.FLOAT32)

    pool = schema.Pool2DOptionsT()
    pool.padding, pool.strideH, pool.strideW = schema.Padding.VALID, 1, 1
    pool.filterHeight, pool.filterWidth = height, width
    builder.op(schema.BuiltinOperator.AVERAGE_POOL_2D, [x], [pooled], schema.BuiltinOptions.Pool2DOptions, pool)
    builder.op(schema.BuiltinOperator.FULLY_CONNECTED, [pooled, w, b], [logits],
               schema.BuiltinOptions.FullyConnectedOptions, schema.FullyConnectedOptionsT())
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    builder.op(schema.BuiltinOperator.SOFTMAX, [logits], [probs], schema.BuiltinOptions.SoftmaxOptions, softmax)
    output = probs
    if custom_op:
        output = builder.tensor("custom_out", [batch, classes], builder.tensors[probs].type)
        builder.op(schema.BuiltinOperator.CUSTOM, [probs], [output], custom_code=custom_op)
    return builder.finish(inputs=[x], outputs=[output])


def with_metadata(model_bytes: bytes, labels, height, width, channels=3, channel_order=None, **extra) -> bytes:
    order = channel_order or ("GRAY" if channels == 1 else "RGB")
    if channels == 1:
        extra.setdefault("mean", [127.5])
        extra.setdefault("std", [127.5])
    md = ModelMetadata(labels=list(labels), height=height, width=width, channels=channels,
                       channel_order=order, model_name="test-pool-fc", **extra)
    return embed_metadata(model_bytes, md)


def write_model(path, *, labels=("red", "green", "blue"), metadata=True, channel_order=None, **kwargs):
    """Build a classifier, optionally embed metadata, write it to ``path`` and return the path."""
    height, width = kwargs.get("height", 8), kwargs.get("width", 8)
    channels = kwargs.get("channels", 3)
    kwargs.setdefault("classes", len(labels))
    data = build_classifier(**kwargs)
    if metadata:
        extra = {"quantization": "int8"} if kwargs.get("kind") == "int8" else {"quantization": "none"}
        data = with_metadata(data, labels, height, width, channels, channel_order, **extra)
    path.write_bytes(data)
    return path


def expected_probabilities(mean_pixel, *, channel_order="RGB", gain=4.0, classes=None):
    """What the float model outputs for an image whose mean RGB pixel is ``mean_pixel``."""
    pixel = np.asarray(mean_pixel, np.float32)
    if channel_order == "BGR":
        pixel = pixel[::-1]
    x = (pixel - 127.5) / 127.5
    logits = np.zeros(classes or len(pixel), np.float32)
    logits[: len(pixel)] = gain * x
    e = np.exp(logits - logits.max())
    return e / e.sum()


class _GraphBuilder:
    def __init__(self):
        self.tensors: list = []
        self.buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel every model has
        self.operators: list = []
        self.opcodes: list = []

    def tensor(self, name, shape, dtype, *, quant=None, data=None) -> int:
        t = schema.TensorT()
        t.name, t.shape, t.type = name, list(shape), dtype
        if quant is not None:
            q = schema.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(quant[0])], [int(quant[1])]
            t.quantization = q
        if data is not None:
            buf = schema.BufferT()
            buf.data = list(np.ascontiguousarray(data).tobytes())
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, builtin, inputs, outputs, options_type=0, options=None, *, custom_code=None) -> None:
        code = schema.OperatorCodeT()
        code.builtinCode = builtin
        code.deprecatedBuiltinCode = min(builtin, 127)
        code.version = 1
        code.customCode = custom_code
        self.opcodes.append(code)
        op = schema.OperatorT()
        op.opcodeIndex = len(self.opcodes) - 1
        op.inputs, op.outputs = list(inputs), list(outputs)
        op.builtinOptionsType, op.builtinOptions = options_type, options
        self.operators.append(op)

    def finish(self, inputs, outputs) -> bytes:
        sub = schema.SubGraphT()
        sub.tensors, sub.operators = self.tensors, self.operators
        sub.inputs, sub.outputs, sub.name = list(inputs), list(outputs), "main"
        model = schema.ModelT()
        model.version, model.description = 3, "edgecnn test classifier"
        model.operatorCodes, model.subgraphs, model.buffers = self.opcodes, [sub], self.buffers
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
