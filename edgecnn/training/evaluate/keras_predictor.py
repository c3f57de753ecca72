"""Parity's Keras predictor: a .keras model (float or edgecnn's QAT archive) behind parity's ``Predictor``.

The training half supplies it to parity (``edgecnn.parity`` imports nothing of TensorFlow):
``load_predictor`` here loads .keras files itself and .tflite files with parity's TF-free
``TFLitePredictor``, so callers with TensorFlow (the CLI for a .keras file, the export gate, benchmark) use
this one. The spec comes from the run's ``recipe.yaml`` beside the file, or from flags; labels
from ``labels.txt`` beside it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.errors import ModelError
from edgecnn.parity.predictors import Predictor, TFLitePredictor, check_model_path, image_shape
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import InputSpec
from edgecnn.training.data.run_inputs import input_spec
from edgecnn.training.models.model_io import is_qat_archive, load_keras_model, load_qat_model


class KerasPredictor(Predictor):
    kind = "keras"

    def __init__(self, path: Path, spec: InputSpec | None = None, labels: list[str] | None = None):
        self.path = path
        # edgecnn's qat.keras is its own archive (start model + QAT weights, see training.qat).
        quantized = is_qat_archive(path)
        self.model = load_qat_model(path) if quantized else load_keras_model(path)
        self.description = "Keras QAT" if quantized else "Keras float"
        shape = self.model.input_shape
        if isinstance(shape, list) or len(self.model.outputs) != 1:
            raise ModelError(f"{path} has several inputs or outputs; parity compares single-input image classifiers")
        self.input_shape = image_shape(shape, path)
        self.num_classes = int(self.model.output_shape[-1])
        run = RunDir(path.parent)
        self.labels = labels if labels is not None else (run.labels() if run.labels_file.is_file() else None)
        self.spec, self.spec_source = spec, "flags" if spec is not None else ""
        if self.spec is None and run.recipe.is_file():
            self.spec, self.spec_source = input_spec(run.load_recipe()), str(run.recipe)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        # predict_on_batch runs one compiled step for the whole batch: far faster than model.predict's
        # per-call dataset machinery when we feed many small chunks.
        return np.asarray(self.model.predict_on_batch(batch), dtype=np.float32)


def load_predictor(path, *, threads: int | None = None, spec: InputSpec | None = None,
                   labels: list[str] | None = None) -> Predictor:
    """A ``Predictor`` for a .keras or .tflite file; a one-line ModelError for anything else."""
    path = check_model_path(path)
    if path.suffix == ".keras":
        return KerasPredictor(path, spec=spec, labels=labels)
    return TFLitePredictor(path, threads=threads, spec=spec, labels=labels)
