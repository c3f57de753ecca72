"""Saving and loading Keras models: atomic writes, safe loading of untrusted files.

Model files are untrusted input. We load only the ``.keras`` format with
``safe_mode=True`` (it refuses Lambda layers that carry Python bytecode) and never the
legacy HDF5/SavedModel formats, which can execute code. A model saved by Keras 3 is
detected from its ``metadata.json`` and refused with the way to rebuild it in tf_keras.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..atomic import atomic_path
from ..errors import ModelError
from .keras_compat import keras


def save_keras_model(model, path) -> Path:
    """Save ``model`` to ``path`` (.keras) atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        model.save(tmp)
    return path


def keras_version_of(path) -> str:
    """The Keras version recorded in a .keras archive, after checking it is one."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Keras model {path} does not exist; check the path")
    if path.suffix != ".keras":
        raise ModelError(
            f"{path} is not a .keras file; edgecnn loads only the .keras format (HDF5 and SavedModel "
            "can run arbitrary code); re-save it with model.save('model.keras') in tf_keras"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        raise ModelError(f"{path} is not a valid .keras archive (corrupt or truncated); re-save the model") from None
    return str(meta.get("keras_version", ""))


def load_keras_model(path, *, quantized: bool = False):
    """Load a .keras model built with tf_keras; ``quantized`` for QAT models (tfmot's custom layers)."""
    path = Path(path)
    version = keras_version_of(path)
    if version.startswith("3"):
        raise ModelError(
            f"{path} was saved by Keras {version}; tensorflow-model-optimization needs Keras 2: rebuild the "
            "model with 'import tf_keras as keras' (pip install tf-keras) and save it again as .keras"
        )
    from .qat import is_qat_archive, load_qat_model

    if is_qat_archive(path):
        # edgecnn's QAT archive (qat.keras): tfmot models do not survive a plain .keras round trip.
        return load_qat_model(path)
    try:
        if quantized:
            import tensorflow_model_optimization as tfmot

            with tfmot.quantization.keras.quantize_scope():
                return keras.models.load_model(path, compile=False, safe_mode=True)
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ValueError as exc:
        if "Lambda" in str(exc) or "safe_mode" in str(exc):
            raise ModelError(
                f"{path} contains a Lambda layer with Python code, which edgecnn never executes from a model "
                "file; replace it with built-in layers and save again"
            ) from None
        raise ModelError(f"cannot load {path}: {str(exc).splitlines()[0][:200]}") from None
    except TypeError as exc:
        raise ModelError(
            f"cannot load {path}: it uses a layer or option tf_keras does not know "
            f"({str(exc).splitlines()[0][:160]}); save it with tf_keras and built-in layers"
        ) from None
