"""Per-layer quantization error, from TensorFlow's own ``QuantizationDebugger``.

When an int8 model disagrees with its float original, the question is which layers lose the
most. ``tf.lite.experimental.QuantizationDebugger`` answers it: it converts the float Keras
model with the same representative (calibration) data the export used, runs a debug build
in which every quantized op's output is compared with its float counterpart, and reports
per-tensor statistics (mean squared error, max abs error, the quantization scale, ...).

We rank layers by **rmse/scale** = sqrt(mean_squared_error) / scale, the metric TensorFlow's
debugger guide uses: it is the error measured in quantization steps. A layer whose only
error is rounding has uniform noise of one step, whose RMS is 1/sqrt(12) ~= 0.29; a layer far
above that loses information to clipping or to a range that fits its values badly, and is the
first candidate to keep in float (the debugger's ``denylisted_nodes``) or to fix with QAT.

TFLite names each tensor after the Keras ops fused into it ("model/conv1_relu/Relu;model/conv1/
Conv2D"); we map those back to the model's real layer names. The debugger needs a float model
to calibrate: for a QAT export we diagnose the float model the QAT started from, which shows
which layers are sensitive to int8 at all (QAT models are already quantized and it rejects them).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import warnings
from pathlib import Path

import numpy as np

from edgecnn.atomic import write_text
from edgecnn.errors import ModelError
from edgecnn.parity.report import report_name
from edgecnn.runtime.preprocess import prepare_image, read_image
from edgecnn.training.data.run_inputs import input_spec
from edgecnn.training.export import calibration
from edgecnn.training.keras_compat import tf
from edgecnn.training.models.model_io import load_keras_model

METRIC = "rmse/scale"
# RMS of pure rounding noise, in quantization steps: a layer at this level quantizes as well as int8 can.
ROUNDING_NOISE = 1.0 / math.sqrt(12.0)
CSV_FIELDS = ("layer", "op", "rmse_over_scale", "mean_squared_error", "max_abs_error", "mean_error",
              "scale", "zero_point", "num_elements", "tensor_name")


@dataclasses.dataclass
class LayerError:
    layer: str  # the Keras layer name(s) fused into this TFLite op, "+"-joined in model order
    op: str  # TFLite op, e.g. CONV_2D
    rmse_over_scale: float
    mean_squared_error: float
    max_abs_error: float
    mean_error: float
    scale: float
    zero_point: int
    num_elements: int
    tensor_name: str


def diagnose_layers(keras_model, representative, debug_inputs: np.ndarray) -> list[LayerError]:
    """Per-layer int8 error of ``keras_model``, worst first.

    ``representative``: the converter's representative dataset (a generator function, as the
    export's ``Calibration.representative_dataset()`` gives; or an array of normalized inputs);
    ``debug_inputs``: the normalized images to measure the error on (e.g. the parity images).
    """
    if len(debug_inputs) == 0:
        raise ModelError("per-layer diagnosis needs images to measure on; none were given")
    if isinstance(representative, np.ndarray):
        representative = _dataset(representative)
    # The debugger sets the converter's input/output types itself; we give it what the export
    # calibrates with, so the debug model's ranges are the exported model's.
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    with warnings.catch_warnings():
        # The debugger runs tf.lite.Interpreter, which warns on every use in TF 2.21.
        warnings.simplefilter("ignore")
        try:
            debugger = tf.lite.experimental.QuantizationDebugger(converter=converter,
                                                                 debug_dataset=_dataset(debug_inputs))
            debugger.run()
        except ValueError as exc:
            raise ModelError(f"QuantizationDebugger cannot debug {keras_model.name}: "
                             f"{str(exc).splitlines()[0][:200]}; diagnose the float model instead") from None
    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    buffer.seek(0)
    namer = _LayerNamer(keras_model)
    rows = [_row(raw, namer) for raw in csv.DictReader(buffer)]
    return sorted(rows, key=lambda r: r.rmse_over_scale, reverse=True)


def _dataset(inputs: np.ndarray):
    inputs = np.asarray(inputs, dtype=np.float32)

    def generate():
        for i in range(len(inputs)):
            yield [inputs[i:i + 1]]

    return generate


def _row(raw: dict, namer: "_LayerNamer") -> LayerError:
    scale = float(raw["scale"])
    mse = float(raw["mean_squared_error"])
    return LayerError(
        layer=namer(raw["tensor_name"]), op=raw["op_name"],
        rmse_over_scale=math.sqrt(mse) / scale if scale > 0 else float("nan"),
        mean_squared_error=mse, max_abs_error=float(raw["max_abs_error"]), mean_error=float(raw["mean_error"]),
        scale=scale, zero_point=int(float(raw["zero_point"])), num_elements=int(float(raw["num_elements"])),
        tensor_name=raw["tensor_name"],
    )


class _LayerNamer:
    """Maps a TFLite tensor name back to the Keras layers fused into it."""

    def __init__(self, keras_model):
        self.order = {}
        for layer in _all_layers(keras_model):
            self.order.setdefault(layer.name, len(self.order))
        self.output_layers = list(getattr(keras_model, "output_names", []) or [])

    def __call__(self, tensor_name: str) -> str:
        found = []
        for part in tensor_name.split(";"):
            for segment in part.split("/"):
                if segment in self.order and segment not in found:
                    found.append(segment)
        if found:
            return "+".join(sorted(found, key=self.order.__getitem__))
        # The model's output tensors are named after the graph call ("StatefulPartitionedCall:0"):
        # output K is the K-th output layer.
        if tensor_name.startswith("StatefulPartitionedCall:"):
            index = int(tensor_name.rsplit(":", 1)[1] or 0)
            if index < len(self.output_layers):
                return self.output_layers[index]
        return tensor_name


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):  # nested models (a backbone inside a functional model)
            yield from _all_layers(layer)


def write_layer_csv(rows: list[LayerError], path) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(dataclasses.asdict(row))
    return write_text(path, buffer.getvalue())


def format_worst(rows: list[LayerError], count: int = 5) -> str:
    """The ``count`` worst layers as terminal lines, with the metric explained once."""
    lines = [f"worst layers by {METRIC} (quantization error in steps; pure rounding noise is "
             f"{ROUNDING_NOISE:.2f}):"]
    width = max((len(r.layer) for r in rows[:count]), default=5)
    for r in rows[:count]:
        lines.append(f"  {r.layer:<{width}}  {r.op:<18} {METRIC} {r.rmse_over_scale:7.3f}  "
                     f"max abs error {r.max_abs_error:.4f}")
    return "\n".join(lines)


# --- `edgecnn parity --per-layer` ----------------------------------------------------------------

# Images the debugger measures on: enough for stable per-layer statistics, few enough that the
# debug model (every op run in float and int8) stays quick.
DEBUG_SAMPLES = 128


def per_layer_report(reference, candidate, data, run=None) -> tuple[Path, str]:
    """Diagnose the float Keras model behind a parity check; write the CSV, return (path, terminal text)."""
    model, spec, where = _float_keras_model(reference, candidate, run)
    representative, calibration_source = _calibration(run, spec, data)
    debug_inputs = _prepared(data.paths[:DEBUG_SAMPLES], spec)
    rows = diagnose_layers(model, representative, debug_inputs)
    folder = run.path if run is not None else Path(candidate.path).parent
    csv_path = write_layer_csv(rows, folder / f"parity_layers_{report_name(candidate.path)}.csv")
    header = (f"per-layer int8 error of {where}, calibrated on {calibration_source}, "
              f"measured on {len(debug_inputs)} images")
    if "qat" in candidate.description.lower():
        header += " (the candidate is QAT: this shows which layers are sensitive to int8 without QAT)"
    return csv_path, header + "\n" + format_worst(rows)


def _float_keras_model(reference, candidate, run):
    """The float Keras model the candidate was quantized from: the run's pruned.keras when the
    candidate's metadata says so, else a float Keras model given, else the run's float.keras."""
    metadata = getattr(getattr(candidate, "classifier", None), "metadata", None)
    from_pruned = metadata is not None and "pruned" in (metadata.quantization_source or "")
    if run is not None and from_pruned and run.pruned_model.is_file():
        return load_keras_model(run.pruned_model), input_spec(run.load_recipe()), str(run.pruned_model)
    for p in (reference, candidate):
        if p.kind == "keras" and p.description == "Keras float":
            return p.model, p.spec, str(p.path)
    if run is not None and run.float_model.is_file():
        return load_keras_model(run.float_model), input_spec(run.load_recipe()), str(run.float_model)
    raise ModelError("--per-layer needs the float Keras model: pass it as REFERENCE, or --data a run directory "
                     "that has float.keras")


def _calibration(run, spec, data):
    """The export's own representative data for a run; the parity images otherwise."""
    if run is not None:
        chosen = calibration.from_run(run, spec)
        return chosen.representative_dataset(), f"{len(chosen.images)} images of the {chosen.source} (as the export)"
    return _prepared(data.paths[:DEBUG_SAMPLES], spec), "the parity images (no run given)"


def _prepared(paths, spec) -> np.ndarray:
    return np.stack([prepare_image(read_image(p), spec) for p in paths])
