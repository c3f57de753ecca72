"""Any classifier edgecnn can compare, behind one small interface: ``predict(batch) -> scores``.

Parity compares a Keras model, a float .tflite or a quantized .tflite with any other. Each
is wrapped in a ``Predictor`` that knows its input spec (size, channel order, normalization),
its labels when it has any, and returns float32 scores for a batch of normalized float inputs:

- TFLite (here): the device half's ``TFLiteClassifier``, which quantizes inputs and dequantizes
  outputs with the tensors' own scale and zero point, exactly as on the device.
- Keras (.keras, float or QAT): the training half's ``KerasPredictor``
  (``edgecnn.training.evaluate.keras_predictor``), which also has the ``load_predictor`` for
  both kinds. This module imports nothing of TensorFlow or the training half.

A model that carries no spec of its own (a Keras file outside a run, a .tflite without edgecnn
metadata) gets one from ``resolve_spec``: flags first, then the other model's normalization.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgecnn.errors import ModelError, missing_extra
from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.preprocess import InputSpec

MODEL_SUFFIXES = (".keras", ".tflite")


@dataclasses.dataclass
class SpecFlags:
    """Normalization given on the command line for models that do not carry their own."""

    channel_order: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.channel_order, self.mean, self.std))


class Predictor:
    """A classifier that maps a batch of normalized float inputs (N, h, w, c) to scores (N, classes)."""

    path: Path
    kind: str  # "keras" or "tflite"
    description: str  # for the report: "Keras float", "TFLite int8 (int8 in/out)", ...
    labels: list[str] | None
    spec: InputSpec | None  # None until resolve_spec fills it in
    spec_source: str  # where the spec came from, for the report
    input_shape: tuple[int, int, int]  # (h, w, c) of the model's input tensor
    num_classes: int

    def predict(self, batch: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


class TFLitePredictor(Predictor):
    kind = "tflite"

    def __init__(self, path: Path, threads: int | None = None, spec: InputSpec | None = None,
                 labels: list[str] | None = None, delegate: str = "cpu"):
        self.path = path
        self.classifier = TFLiteClassifier(path, threads=threads, labels=labels, spec=spec, delegate=delegate)
        md = self.classifier.metadata
        detail = self.classifier.input_detail
        self.input_shape = image_shape(detail["shape"], path)
        self.num_classes = int(self.classifier.output_detail["shape"][-1])
        self.description = _tflite_description(md, detail, self.classifier.output_detail)
        # Labels: explicit > metadata. A model without labels reports None, so that it can borrow
        # the other model's labels instead of failing on "0", "1", ... versus real names.
        self.labels = labels if labels is not None else (list(md.labels) if md is not None and md.labels else None)
        if spec is not None:
            self.spec, self.spec_source = spec, "flags"
        elif md is not None:
            self.spec, self.spec_source = InputSpec.from_metadata(md), "metadata"
        else:
            self.spec, self.spec_source = None, ""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier.predict(batch), dtype=np.float32)


def check_model_path(path) -> Path:
    """``path`` as a Path when it names a .keras or .tflite file; a one-line ModelError otherwise."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist; check the path")
    if path.is_dir():
        raise ModelError(f"{path} is a folder; pass a model file (.keras or .tflite), e.g. {path}/float.keras")
    if path.suffix not in MODEL_SUFFIXES:
        raise ModelError(
            f"{path} is not a model edgecnn can compare (suffix {path.suffix or 'none'!r}); "
            f"give a {' or '.join(MODEL_SUFFIXES)} file"
        )
    return path


def keras_unavailable(path, module: str = "tensorflow") -> ModelError:
    """The error for a .keras model where the training half (TensorFlow) is not installed."""
    return ModelError(missing_extra(f"comparing the Keras model {Path(path).name}", module)
                      + "; two .tflite files compare without it")


def load_predictor(path, *, threads: int | None = None, spec: InputSpec | None = None,
                   labels: list[str] | None = None) -> Predictor:
    """A ``TFLitePredictor`` for a .tflite file; a one-line ModelError for anything else.

    A .keras file needs the training half's loader, ``training.evaluate.keras_predictor.load_predictor``
    (the CLI and the export gate use it); here it gets the "pip install edgecnn[train]" error.
    """
    path = check_model_path(path)
    if path.suffix == ".keras":
        raise keras_unavailable(path)
    return TFLitePredictor(path, threads=threads, spec=spec, labels=labels)


def resolve_spec(predictor: Predictor, other: Predictor, flags: SpecFlags | None = None) -> str | None:
    """Give ``predictor`` an input spec if it has none; return a note for the report when one was assumed.

    Order: the model's own (recipe or metadata) > flags > the other model's normalization at this
    model's input size (a Keras model and its export share it) > edgecnn's defaults (127.5/127.5, RGB).
    """
    flags = flags or SpecFlags()
    if predictor.spec is not None:
        _check_spec_fits(predictor)
        return None
    h, w, c = predictor.input_shape
    if flags.given():
        predictor.spec = InputSpec.from_input_shape((h, w, c), channel_order=flags.channel_order,
                                                    mean=flags.mean, std=flags.std)
        predictor.spec_source = "flags"
        return None
    if other.spec is not None and other.spec.channels == c:
        base = other.spec
        predictor.spec = InputSpec(height=h, width=w, channels=c, channel_order=base.channel_order,
                                   mean=base.mean, std=base.std, resize=base.resize)
        predictor.spec_source = f"borrowed from {other.path.name}"
        return (f"{predictor.path.name} declares no preprocessing; using {other.path.name}'s "
                f"({_describe_norm(base)}); pass --mean/--std/--channel-order to override")
    predictor.spec = InputSpec.from_input_shape((h, w, c))
    predictor.spec_source = "defaults"
    return (f"{predictor.path.name} declares no preprocessing; assuming {_describe_norm(predictor.spec)}; "
            "pass --mean/--std/--channel-order to override")


def _check_spec_fits(predictor: Predictor) -> None:
    spec, (h, w, c) = predictor.spec, predictor.input_shape
    if (spec.height, spec.width, spec.channels) != (h, w, c):
        raise ModelError(
            f"{predictor.path} takes {h}x{w}x{c} inputs but its {predictor.spec_source} says "
            f"{spec.height}x{spec.width}x{spec.channels}; re-export the model or fix the recipe"
        )


def _describe_norm(spec: InputSpec) -> str:
    mean = ",".join(f"{v:g}" for v in spec.mean)
    std = ",".join(f"{v:g}" for v in spec.std)
    return f"{spec.channel_order}, mean {mean}, std {std}"


def image_shape(shape, path: Path) -> tuple[int, int, int]:
    dims = [None if d is None else int(d) for d in shape]
    if len(dims) == 4:
        dims = dims[1:]
    if len(dims) != 3 or None in dims or dims[2] not in (1, 3):
        raise ModelError(
            f"{path} has input shape {list(shape)}; parity needs a fixed-size image input (N, height, width, 1 or 3)"
        )
    return tuple(dims)


def _tflite_description(md, input_detail: dict, output_detail: dict) -> str:
    quantization = md.quantization if md is not None and md.quantization else ""
    in_type = np.dtype(input_detail["dtype"]).name
    out_type = np.dtype(output_detail["dtype"]).name
    if not quantization:
        quantization = "int8" if in_type in ("int8", "uint8") else "float"
    io = in_type if in_type == out_type else f"{in_type}/{out_type}"
    source = f", {md.quantization_source}" if md is not None and md.quantization_source else ""
    return f"TFLite {quantization} ({io} io{source})"
