"""Which description of a model the device half uses: edgecnn's entry, the standard one, or guesses.

- an ``edgecnn`` entry: it wins (it is the richer record); where a ``TFLITE_METADATA`` entry
  disagrees with it about labels, normalization or colour space, that is a warning;
- only ``TFLITE_METADATA`` (Model Maker, MediaPipe models): labels, normalization and colour
  space come from it, the size from the input tensor;
- neither: ``metadata`` is None and one warning says that labels and normalization are guesses.
``source`` says in words where the preprocessing came from, for ``classify``/``run``/``inspect``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.tflite import associated_files, standard
from edgecnn.tflite.flatbuffer import parse_model, read_tflite_bytes
from edgecnn.tflite.metadata import ModelMetadata, metadata_from_bytes, raw_metadata_entry

EDGECNN_SOURCE = "edgecnn metadata"
STANDARD_SOURCE = "standard TFLite metadata (TFLITE_METADATA)"
GUESS_WARNING = ("{name} carries no metadata (neither edgecnn's nor TFLITE_METADATA): labels are class indices "
                 "and normalization is guessed (RGB, mean 127.5, std 127.5); pass --labels FILE and "
                 "--channel-order/--mean/--std if these are wrong")


@dataclasses.dataclass
class Described:
    metadata: ModelMetadata | None
    source: str
    standard: standard.StandardMetadata | None = None
    warnings: list[str] = dataclasses.field(default_factory=list)


def describe_file(path) -> Described:
    return describe(read_tflite_bytes(path), name=str(path))


def describe(data: bytes, name="model") -> Described:
    own = metadata_from_bytes(data, name=name)
    try:
        std = read_standard(data, name=name)
        std_error = None
    except ModelError as exc:
        if own is None:
            raise
        std, std_error = None, str(exc)
    if own is not None:
        warnings = [f"ignoring its TFLITE_METADATA entry: {std_error}"] if std_error else _disagreements(own, std, name)
        return Described(own, EDGECNN_SOURCE, std, warnings)
    if std is not None:
        return Described(_from_standard(std, data, name), STANDARD_SOURCE, std, _gaps(std, name))
    return Described(None, "", None, [GUESS_WARNING.format(name=name)])


def read_standard(data: bytes, name="model") -> standard.StandardMetadata | None:
    """The model's ``TFLITE_METADATA`` entry, checked against its input channels and output size."""
    blob = raw_metadata_entry(data, standard.METADATA_NAME)
    if blob is None:
        return None
    _, files = associated_files.split(data, name=name)
    input_shape, num_scores = _io_shape(data)
    return standard.parse(blob, files, name=name, channels=int(input_shape[-1]), num_scores=num_scores)


def _io_shape(data: bytes) -> tuple[list[int], int]:
    model = parse_model(data)
    sub = model.Subgraphs(0)
    if sub.InputsLength() != 1 or sub.OutputsLength() != 1:
        raise ModelError("an image classifier has one image input and one score output")
    shape_in = [int(d) for d in sub.Tensors(sub.Inputs(0)).ShapeAsNumpy()]
    shape_out = [int(d) for d in sub.Tensors(sub.Outputs(0)).ShapeAsNumpy()]
    if len(shape_in) != 4:
        raise ModelError(f"input shape {shape_in} is not an image (N, height, width, channels)")
    return shape_in, int(np.prod(shape_out[1:]))


def _from_standard(std: standard.StandardMetadata, data: bytes, name) -> ModelMetadata:
    shape_in, num_scores = _io_shape(data)
    channels = shape_in[3]
    order = std.channel_order or ("GRAY" if channels == 1 else "RGB")
    if (order == "GRAY") != (channels == 1):
        raise ModelError(f"{name}'s TFLITE_METADATA says colour space {order} but the input has {channels} channel(s)")
    return ModelMetadata(labels=std.labels or [str(i) for i in range(num_scores)], height=shape_in[1],
                         width=shape_in[2], channels=channels, channel_order=order,
                         mean=std.mean or [127.5] * channels, std=std.std or [127.5] * channels,
                         model_name=std.name)


def _gaps(std: standard.StandardMetadata, name) -> list[str]:
    missing = [what for what, value in (("labels", std.labels), ("NormalizationOptions", std.mean),
                                        ("colour space", std.channel_order)) if value is None]
    if not missing:
        return []
    return [f"{name}'s TFLITE_METADATA has no {', '.join(missing)}: those are guessed (labels: class indices; "
            "RGB, mean 127.5, std 127.5); pass --labels/--channel-order/--mean/--std if wrong"]


def _disagreements(own: ModelMetadata, std: standard.StandardMetadata | None, name) -> list[str]:
    if std is None:
        return []
    found = []
    if std.labels is not None and std.labels != list(own.labels):
        found.append("labels")
    for field in ("mean", "std"):
        theirs = getattr(std, field)
        if theirs is not None and not _same_values(theirs, getattr(own, field), own.channels):
            found.append(field)
    if std.channel_order is not None and std.channel_order != own.channel_order:
        found.append(f"colour space ({std.channel_order} against {own.channel_order})")
    if not found:
        return []
    return [f"{name}: its TFLITE_METADATA disagrees with its edgecnn metadata on {', '.join(found)}; "
            "using the edgecnn entry (re-export the model to make them agree)"]


def _same_values(a, b, channels: int) -> bool:
    wide = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), (channels,))  # noqa: E731
    return bool(np.allclose(wide(a), wide(b), rtol=0, atol=1e-6))
