"""The contract between the training half and the device half: metadata inside the .tflite.

``edgecnn export`` writes one JSON document into the flatbuffer's ``metadata`` table under
the name ``edgecnn`` (no TFLite Support library needed, and any TFLite runtime ignores it).
The device half reads it back without TensorFlow. It says everything the device needs:
labels, input size, channel order and normalization, plus provenance (model name, recipe,
toolkit version, a content hash of the model without this metadata).

Normalization convention (shared by training and device): the model's float input is
``(pixel - mean) / std`` where ``pixel`` is 0..255 in ``channel_order``. Quantized inputs are
then quantized with the input tensor's own scale and zero point (see ``preprocess``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

from edgecnn.errors import ModelError
from edgecnn.tflite import associated_files, standard
from edgecnn.tflite.flatbuffer import parse_model, read_tflite_bytes

METADATA_NAME = "edgecnn"
FORMAT_VERSION = 1
CHANNEL_ORDERS = ("RGB", "BGR", "GRAY")
MAX_ENTRY_BYTES = standard.MAX_METADATA_BYTES  # checked before a metadata buffer is copied or parsed


@dataclasses.dataclass
class ModelMetadata:
    labels: list[str]
    height: int
    width: int
    channels: int = 3
    channel_order: str = "RGB"
    mean: list[float] = dataclasses.field(default_factory=lambda: [127.5, 127.5, 127.5])
    std: list[float] = dataclasses.field(default_factory=lambda: [127.5, 127.5, 127.5])
    # How the image is brought to height x width: "area" (OpenCV INTER_AREA, best for shrinking).
    resize: str = "area"
    model_name: str = ""
    quantization: str = ""  # none | fp16 | dynamic | int8
    quantization_source: str = ""  # float | ptq | qat | pruned-qat ...
    target: str = "cpu"  # cpu | gpu | edgetpu
    recipe: dict = dataclasses.field(default_factory=dict)
    edgecnn_version: str = ""
    content_hash: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.channel_order not in CHANNEL_ORDERS:
            raise ModelError(f"channel_order {self.channel_order!r} is not one of {', '.join(CHANNEL_ORDERS)}")
        if self.channels not in (1, 3):
            raise ModelError(f"channels must be 1 or 3, got {self.channels}")
        if (self.channels == 1) != (self.channel_order == "GRAY"):
            raise ModelError(f"channel_order {self.channel_order} does not fit {self.channels} channel(s)")
        for field in ("mean", "std"):
            values = getattr(self, field)
            if len(values) not in (1, self.channels):
                raise ModelError(f"{field} has {len(values)} values; give 1 or {self.channels}")
        if any(s == 0 for s in self.std):
            raise ModelError("std must not contain 0")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes, name="model") -> "ModelMetadata":
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            raise ModelError(f"{name} carries edgecnn metadata that is not valid JSON; re-export it") from None
        if not isinstance(raw, dict):
            raise ModelError(f"{name} carries edgecnn metadata that is not a JSON object; re-export it")
        known = {f.name for f in dataclasses.fields(cls)}
        # Ignore keys from newer versions rather than refusing the model.
        kwargs = {k: v for k, v in raw.items() if k in known}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ModelError(f"{name} carries incomplete edgecnn metadata ({exc}); re-export it") from None


def read_metadata(path) -> ModelMetadata | None:
    """The edgecnn metadata of a .tflite file, or None for a model edgecnn did not make."""
    data = read_tflite_bytes(path)
    return metadata_from_bytes(data, name=str(path))


def metadata_from_bytes(data: bytes, name="model") -> ModelMetadata | None:
    raw = raw_metadata_entry(data, METADATA_NAME)
    return None if raw is None else ModelMetadata.from_json(raw, name=name)


def raw_metadata_entry(data: bytes, name: str) -> bytes | None:
    """The bytes of one metadata entry, or None when the model has no entry of that name.

    An implausibly large entry is refused before it is copied or parsed."""
    for entry_name, buffer in _metadata_buffers(data):
        if entry_name != name:
            continue
        size = buffer.Size() if buffer.Offset() > 1 else buffer.DataLength()
        if size > MAX_ENTRY_BYTES:
            raise ModelError(f"metadata entry {name!r} is {size} bytes, more than the {MAX_ENTRY_BYTES} any real "
                             "metadata needs; refusing to read it")
        if buffer.Offset() > 1:  # large models keep buffers after the flatbuffer
            return bytes(data[buffer.Offset(): buffer.Offset() + buffer.Size()])
        return buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    return None


def metadata_names(data: bytes) -> dict[str, int]:
    """Names of all metadata entries and their sizes in bytes (for ``inspect``)."""
    return {name: (buffer.Size() if buffer.Offset() > 1 else buffer.DataLength())
            for name, buffer in _metadata_buffers(data)}


def _metadata_buffers(data: bytes):
    model = parse_model(data)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        yield (entry.Name() or b"").decode("utf-8", "replace"), model.Buffers(entry.Buffer())


def embed_metadata(model_bytes: bytes, metadata: ModelMetadata) -> bytes:
    """A copy of ``model_bytes`` carrying ``metadata`` twice: edgecnn's entry and the standard one.

    Replaces existing edgecnn and ``TFLITE_METADATA`` entries; keeps every other associated file
    in the appended zip and adds ``labels.txt``. Sets ``metadata.content_hash`` to the hash of the
    model without either entry, so ``verify_content_hash`` can later detect tampering.
    """
    from ai_edge_litert.tools import flatbuffer_utils

    flat, files = associated_files.split(model_bytes)
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(flat))
    _drop_entries(model)
    metadata.content_hash = _hash_model_object(model)
    _append_entry(model, METADATA_NAME, metadata.to_json().encode("utf-8"))
    _append_entry(model, standard.METADATA_NAME, standard.build(standard_from_edgecnn(metadata)))
    files[standard.LABELS_FILE] = "\n".join(metadata.labels).encode("utf-8") + b"\n"
    return associated_files.join(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), files)


def standard_from_edgecnn(metadata: ModelMetadata) -> standard.StandardMetadata:
    recipe_name = metadata.model_name or "edgecnn image classifier"
    return standard.StandardMetadata(
        name=recipe_name, version=metadata.content_hash or "",
        description=(f"{len(metadata.labels)}-class image classifier made by edgecnn {metadata.edgecnn_version}"
                     f" ({metadata.quantization or 'float'}, {metadata.target}); the 'edgecnn' entry has the recipe"),
        license=str(metadata.recipe.get("license", "")) if isinstance(metadata.recipe, dict) else "",
        labels=list(metadata.labels), mean=list(metadata.mean), std=list(metadata.std),
        channel_order=metadata.channel_order, height=metadata.height, width=metadata.width)


def _append_entry(model, name: str, blob: bytes) -> None:
    from ai_edge_litert import schema_py_generated as schema

    buffer = schema.BufferT()
    buffer.data = list(blob)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = name
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]


def verify_content_hash(model_bytes: bytes, metadata: ModelMetadata) -> bool:
    """True when the model (without its metadata entries) still hashes to ``metadata.content_hash``."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(associated_files.split(model_bytes)[0]))
    _drop_entries(model)
    return _hash_model_object(model) == metadata.content_hash


def _drop_entries(model) -> None:
    """Remove edgecnn's and the standard entry, so the hash covers the model, not its descriptions."""
    kept, dropped_buffers = [], []
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name in (METADATA_NAME, standard.METADATA_NAME):
            dropped_buffers.append(entry.buffer)
        else:
            kept.append(entry)
    model.metadata = kept or None
    for index in sorted(dropped_buffers, reverse=True):
        if index == len(model.buffers) - 1:
            # Our entries' buffers are the last ones (embed_metadata appends them): remove them, so the
            # model hashes exactly as it did before embedding.
            model.buffers.pop()
        else:
            # Elsewhere, removing it would shift other buffer indices: leave it empty instead.
            model.buffers[index].data = None


def _hash_model_object(model) -> str:
    from ai_edge_litert.tools import flatbuffer_utils

    return "sha256:" + hashlib.sha256(bytes(flatbuffer_utils.convert_object_to_bytearray(model))).hexdigest()


def labels_from_file(path) -> list[str]:
    """Labels from a text file, one per line (for models without edgecnn metadata)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"labels file {path} does not exist; give a text file with one label per line")
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file {path} is empty; give one label per line")
    return labels
