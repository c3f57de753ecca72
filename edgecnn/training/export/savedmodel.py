"""``edgecnn export RUN --format savedmodel``: the run's float model as a TensorFlow SavedModel, for
TF Serving and other cloud runtimes (the device keeps the .tflite).

Signature ``serving_default``:
- input ``image``: uint8 ``[batch, height, width, channels]``, pixels 0..255 in the recipe's channel
  order, already resized to the model's size (as ``preprocess.model_pixels_from_rgb`` makes them);
- output ``scores``: float32 ``[batch, classes]``, softmax probabilities in the order of
  ``assets/labels.txt``.
Normalization ``(pixel - mean) / std`` runs inside the graph, so clients send raw pixels and cannot
normalize differently from the .tflite. Written to a temporary folder beside the target, then renamed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgecnn.errors import RunDirError
from edgecnn.training.export.exporter import ExportOptions, input_spec_for, labels_for, resolve_source
from edgecnn.training.keras_compat import tf
from edgecnn.training.models.model_io import load_keras_model

SIGNATURE = "serving_default"


def serving_function(model, spec):
    mean = tf.constant(spec.mean, tf.float32)
    std = tf.constant(spec.std, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, spec.height, spec.width, spec.channels], tf.uint8,
                                                name="image")])
    def serve(image):
        return {"scores": model((tf.cast(image, tf.float32) - mean) / std, training=False)}

    return serve


def export_savedmodel(path, out=None) -> Path:
    """Write the float model of ``path`` (a run directory or a .keras file) as a SavedModel folder."""
    path = Path(path)
    options = ExportOptions(start="float" if path.is_dir() else None)
    source = resolve_source(path, options, "none")
    model = load_keras_model(source.keras_path)
    spec = input_spec_for(source, model, options)
    classes = int(model.outputs[0].shape[-1])
    labels = labels_for(source, classes, options) or [str(i) for i in range(classes)]
    out = Path(out) if out else (source.run.path if source.run else path.parent) / "savedmodel"
    if out.exists():
        raise RunDirError(f"{out} already exists; remove it or give another --out")
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        module = tf.Module()
        module.model = model
        module.serve = serving_function(model, spec)
        tf.saved_model.save(module, str(tmp), signatures={SIGNATURE: module.serve})
        (tmp / "assets").mkdir(exist_ok=True)
        (tmp / "assets" / "labels.txt").write_text("\n".join(labels) + "\n", encoding="utf-8")
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
