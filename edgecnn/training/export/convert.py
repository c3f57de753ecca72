"""TFLiteConverter settings for each ``--quantize`` mode, and nothing else.

  none     float32 weights and activations
  fp16     float16 weights (dequantized to float32 at load; GPUs run them as float16)
  dynamic  int8 weights, float activations (no calibration data needed)
  int8     full integer: int8 weights and activations, only TFLITE_BUILTINS_INT8 kernels, so
           conversion fails instead of leaving a float op inside; input/output types per ``io``.
           Calibrated from a representative dataset (post-training quantization), or from the
           ranges a QAT model learned.

Every export has a static input shape with batch 1 (what the Edge TPU requires and what a
device feeds). It is converted from a concrete function through the frozen-graph path
(``experimental_lower_to_saved_model = False``): the SavedModel detour traces every Keras
layer function and took 11 s against 0.7 s for a tiny model here, with bit-identical outputs
(max |difference| to the Keras model the same for both paths, float and int8).
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterable

from edgecnn.errors import ModelError
from edgecnn.export_plan import EXPORT_IO as IO_TYPES
from edgecnn.export_plan import MODE_FILE_NAMES, MODES, normalize_mode  # noqa: F401  (the names live there)
from edgecnn.training.keras_compat import tf


def static_input_shape(model) -> list[int]:
    """[1, height, width, channels] of a single-input image model, or a one-line error."""
    shape = model.input_shape
    if isinstance(shape, list):
        raise ModelError(f"the model has {len(shape)} inputs; edgecnn exports single-input image classifiers")
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ModelError(f"the model's input shape {tuple(shape)} is not a fixed-size image (N, height, width, "
                         "channels); rebuild it with keras.Input((height, width, channels))")
    return [1, *(int(d) for d in shape[1:])]


def make_converter(model, mode: str, *, io: str = "float32",
                   representative: Callable[[], Iterable] | None = None):
    """A TFLiteConverter for a tf_keras model, set up for ``mode``, with a batch-1 static input."""
    mode = normalize_mode(mode)
    function = tf.function(lambda x: model(x, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec(static_input_shape(model), tf.float32))
    holder = tf.Module()
    holder.variables_to_keep = list(model.variables)  # keeps the captured variables alive while converting
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    converter.experimental_lower_to_saved_model = False
    if mode == "fp16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if representative is not None:
            converter.representative_dataset = representative
        converter.inference_input_type = _tf_type(io)
        converter.inference_output_type = _tf_type(io)
    return converter


def _tf_type(io: str):
    if io not in IO_TYPES:
        raise ModelError(f"--io {io!r} is not one of {', '.join(IO_TYPES)}")
    return {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[io]


def convert(model, mode: str, *, io: str = "float32", representative: Callable[[], Iterable] | None = None) -> bytes:
    """The .tflite bytes of ``model`` in ``mode``; converter failures become one-line ModelErrors."""
    converter = make_converter(model, mode, io=io, representative=representative)
    try:
        with warnings.catch_warnings():
            # "Statistics for quantized inputs were expected": the int8 input's range comes from the
            # representative data (PTQ) or the QAT model's input quantizer, not from user-given stats.
            warnings.simplefilter("ignore", UserWarning)
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises ConverterError, RuntimeError or ValueError with MLIR dumps
        raise ModelError(f"TFLite conversion to {mode} failed: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    for line in str(exc).splitlines():
        line = line.strip()
        if line and not line.startswith(("<unknown>", "note:", "loc(")):
            return line[:240]
    return type(exc).__name__
