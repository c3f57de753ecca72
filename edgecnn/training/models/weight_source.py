"""Weights a user starts from (``--weights FILE|RUN``): read them safely, copy them into a model by layer name.

A source is one of:
  a run directory        its float.keras (another edgecnn run)
  a .keras model         loaded only through ``model_io.load_keras_model`` (safe mode, tf_keras only)
  a Keras weights file   .h5 (tf_keras's HDF5 weights, also inside a full-model .h5) or .weights.h5
Weights files are read with h5py as plain arrays: no model config from the file is ever deserialized,
so a full-model .h5 (which can carry Lambda bytecode) contributes its arrays and nothing else.

tf_keras writes ``.weights.h5`` in its newer layout, which stores no layer names: layers are keyed
by type and position (``layers/conv2d_3/vars/0`` is the fourth Conv2D). Such a file is matched by
the same key computed for this model's layers, so it fits only a model of the same structure.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import h5py
import numpy as np

from edgecnn.errors import ModelError
from edgecnn.rundir import RunDir
from edgecnn.training.keras_compat import keras
from edgecnn.training.models.model_io import is_qat_archive, load_keras_model

WEIGHT_SUFFIXES = (".weights.h5", ".h5", ".hdf5")
# Layer names that only keras.applications' MobileNets have: V1 (conv_dw_1), V2 (expanded_conv_...).
APPLICATIONS_MARKERS = {"conv_dw_1": "mobilenet_v1", "expanded_conv_depthwise": "mobilenet_v2"}


@dataclasses.dataclass
class SourceWeights:
    """A source's arrays per layer: ``layers[name] = [(weight name, array), ...]`` in the layer's order."""

    path: Path
    layers: dict[str, list[tuple[str, np.ndarray]]]
    # False for the newer .weights.h5 layout: keys are type-and-position keys (see ``layer_key``).
    by_name: bool = True
    # A ZeroPadding2D layer: only keras.applications' MobileNets have one (edgecnn's use padding="same").
    has_padding_layers: bool = False

    def applications_family(self) -> str | None:
        """mobilenet_v1/mobilenet_v2 when the source is a keras.applications MobileNet, else None."""
        for marker, family in APPLICATIONS_MARKERS.items():
            if marker in self.layers:
                return family
        return "unknown" if self.has_padding_layers else None


@dataclasses.dataclass
class WeightCopy:
    """What ``copy_by_name`` did: the layers whose weights came from ``source``."""

    source: str
    copied: list[str]


def describe_bad_source(source) -> str:
    return (f"--weights {str(source)!r} is neither 'imagenet' nor an existing run directory, .keras model or Keras "
            f"weights file ({', '.join(WEIGHT_SUFFIXES)}); check the path")


def read_source(source) -> SourceWeights:
    """The arrays of ``source`` (run directory, .keras or weights file), or a one-line ModelError."""
    path = Path(source)
    if path.is_dir():
        run_model = RunDir(path).float_model
        if not run_model.is_file():
            raise ModelError(f"{path} is a directory without float.keras; give a finished edgecnn run directory "
                             "(train it to the end first), a .keras model or a Keras weights file")
        path = run_model
    if not path.is_file():
        raise ModelError(describe_bad_source(source))
    if path.suffix == ".keras":
        return _read_keras(path)
    if path.name.endswith(WEIGHT_SUFFIXES):
        return _read_h5(path)
    raise ModelError(f"{path} is not a .keras model or a Keras weights file ({', '.join(WEIGHT_SUFFIXES)}); "
                     "save the weights with model.save_weights('w.h5') or the model with model.save('m.keras')")


def _read_keras(path: Path) -> SourceWeights:
    if is_qat_archive(path):
        raise ModelError(f"{path} is a quantization-aware (QAT) model; start from the float model it was made from "
                         "(the run's float.keras)")
    model = load_keras_model(path)
    layers = {layer.name: [(_weight_name(w.name), w.numpy()) for w in layer.weights]
              for layer in model.layers if layer.weights}
    padding = any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in model.layers)
    return SourceWeights(path, layers, by_name=True, has_padding_layers=padding)


def _read_h5(path: Path) -> SourceWeights:
    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)  # a full-model .h5 keeps them there
            if "layer_names" in root.attrs:
                return _read_named_h5(path, root)
            if "layers" in f:
                return _read_keyed_h5(path, f["layers"])
    except OSError as exc:
        raise ModelError(f"{path} is not a readable HDF5 file ({str(exc).splitlines()[0][:120]}); "
                         "re-save the weights with model.save_weights") from None
    raise ModelError(f"{path} is an HDF5 file without Keras weights (no layer_names, no layers/ group); "
                     "save them with model.save_weights('w.h5') in tf_keras")


def _read_named_h5(path: Path, root) -> SourceWeights:
    layers = {}
    names = [_text(n) for n in root.attrs["layer_names"]]
    for name in names:
        group = root[name]
        weight_names = [_text(n) for n in group.attrs.get("weight_names", [])]
        if weight_names:
            layers[name] = [(_weight_name(w), np.asarray(group[w])) for w in weight_names]
    padding = any(re.search(r"(^|_)pad(_|$)|zero_padding", n) for n in names)
    return SourceWeights(path, layers, by_name=True, has_padding_layers=padding)


def _read_keyed_h5(path: Path, group) -> SourceWeights:
    layers = {}
    for key in group:
        variables = group[key].get("vars")
        if variables is not None and len(variables):
            layers[key] = [(index, np.asarray(variables[index])) for index in sorted(variables, key=int)]
    padding = any(key.startswith("zero_padding2d") for key in group)
    return SourceWeights(path, layers, by_name=False, has_padding_layers=padding)


def _text(value) -> str:
    return value.decode("utf8") if isinstance(value, bytes) else str(value)


def _weight_name(name: str) -> str:
    """'conv_pw_3/kernel:0' -> 'kernel'."""
    return name.split("/")[-1].split(":")[0]


def _snake(class_name: str) -> str:
    """tf_keras's key for a layer class in the .weights.h5 layout (its generic_utils.to_snake_case)."""
    text = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", text).lower()


def layer_keys(model) -> dict[str, str]:
    """Layer name -> its key in a .weights.h5 of ``model`` (class in snake case, numbered per class)."""
    counts: dict[str, int] = {}
    keys = {}
    for layer in model.layers:
        base = _snake(type(layer).__name__)
        n = counts.get(base, 0)
        counts[base] = n + 1
        keys[layer.name] = base if n == 0 else f"{base}_{n}"
    return keys


def _shape(shape) -> str:
    return "(" + ",".join(str(int(d)) for d in shape) + ")"


def _hint(model_shape, source_shape, alpha: float | None, first: bool) -> str:
    """Why two shapes may differ: another width (alpha) or another number of input channels."""
    if len(model_shape) == 4 and first and model_shape[:2] == source_shape[:2] and model_shape[2] != source_shape[2]:
        return f" (channels {source_shape[2]} vs {model_shape[2]}?)"
    if model_shape[-1] != source_shape[-1] and model_shape[-1]:
        ratio = source_shape[-1] / model_shape[-1]
        if alpha is not None:
            return f" (alpha {alpha * ratio:g} vs {alpha:g}?)"
        return f" (a {ratio:g}x wider layer: another alpha?)"
    return ""


def copy_by_name(model, source: SourceWeights, names, *, alpha: float | None = None) -> WeightCopy:
    """Set the weights of each layer in ``names`` from the same-named layer of ``source``; all or nothing."""
    keys = layer_keys(model) if not source.by_name else None
    planned, first = [], True
    for name in names:
        layer = model.get_layer(name)
        if not layer.weights:
            continue
        key = keys[name] if keys else name
        arrays = source.layers.get(key)
        if arrays is None:
            where = f"(as {key}, by type and position) " if keys else ""
            raise ModelError(f"layer {name} of this model is not in {source.path} {where}: its backbone is another "
                             "architecture or depth; build the model with the architecture the weights came from")
        if len(arrays) != len(layer.weights):
            raise ModelError(f"layer {name} has {len(arrays)} weights in {source.path} but {len(layer.weights)} in "
                             "this model (BatchNormalization or bias differs?); use weights of the same architecture")
        for variable, (_, array) in zip(layer.weights, arrays):
            mine, theirs = tuple(variable.shape), tuple(array.shape)
            if mine != theirs:
                raise ModelError(f"layer {name} has {_weight_name(variable.name)} {_shape(theirs)} in {source.path} "
                                 f"but {_shape(mine)} in this model{_hint(mine, theirs, alpha, first)}")
        planned.append((layer, [array for _, array in arrays]))
        first = False
    for layer, arrays in planned:  # only after every layer fits: a failed copy leaves the model untouched
        layer.set_weights(arrays)
    return WeightCopy(str(source.path), [layer.name for layer, _ in planned])
