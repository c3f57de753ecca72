"""Reading .tflite files safely, without TensorFlow and before any interpreter sees them.

Model files are untrusted input: check that a file is a TFLite flatbuffer (its file
identifier "TFL3" at bytes 4..8) and that it parses, so that a corrupt or truncated
file gets a one-line error instead of a crash inside the interpreter.
"""

from __future__ import annotations

from pathlib import Path

from edgecnn.errors import ModelError

TFLITE_IDENTIFIER = b"TFL3"


def read_tflite_bytes(path) -> bytes:
    """The bytes of a .tflite file, after checking it exists and looks like a TFLite flatbuffer."""
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file {path} does not exist; check the path")
    if path.is_dir():
        raise ModelError(f"{path} is a folder, not a .tflite file; pass the model file itself")
    data = path.read_bytes()
    check_tflite_bytes(data, path)
    return data


def check_tflite_bytes(data: bytes, name="model") -> None:
    if len(data) < 8 or data[4:8] != TFLITE_IDENTIFIER:
        raise ModelError(
            f"{name} is not a TFLite model (no 'TFL3' flatbuffer identifier); "
            "export one with 'edgecnn export' or check the file is not corrupt"
        )
    try:
        model = parse_model(data)
        # Touch the structure so truncation shows up here, not in the interpreter.
        for i in range(model.SubgraphsLength()):
            sub = model.Subgraphs(i)
            sub.TensorsLength(), sub.OperatorsLength()
        for i in range(model.BuffersLength()):
            model.Buffers(i).DataLength()
    except ModelError:
        raise
    except Exception as exc:  # flatbuffers raises plain struct/index errors on bad offsets
        raise ModelError(
            f"{name} is a corrupt or truncated TFLite file ({type(exc).__name__}); re-export or re-copy it"
        ) from None
    if model.SubgraphsLength() == 0:
        raise ModelError(f"{name} has no subgraph, so it is not a usable TFLite model; re-export it")


def parse_model(data: bytes):
    """The flatbuffer's root ``Model`` table (read-only, lazy; cheap even for big files)."""
    from ai_edge_litert import schema_py_generated as schema

    return schema.Model.GetRootAs(data, 0)
