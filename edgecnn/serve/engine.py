"""The model behind the server: a small pool of ``TFLiteClassifier`` instances.

An interpreter is not safe to call from two threads at once, so each request thread borrows one
classifier from the pool and returns it. Inference is ``TFLiteClassifier.predict_image`` and
``postprocess.predict``, the calls ``edgecnn classify`` makes, so a served answer and a command-line
answer for the same bytes are the same numbers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import queue
import time
from pathlib import Path

import numpy as np

from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.postprocess import predict


@dataclasses.dataclass
class Classified:
    prediction: dict
    seconds: float  # preprocess + invoke + postprocess


def model_id(path: Path, metadata) -> str:
    """'<name>@sha256:<first 16 hex digits of the file's hash>': changes whenever the file does."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    name = (metadata.model_name if metadata is not None and metadata.model_name else Path(path).stem)
    return f"{name}@sha256:{digest}"


def _warmed(classifier):
    """The classifier after one invoke on a black image: the first invoke sets up XNNPACK (~0.1 s here),
    which belongs to start-up, not to the first client's latency."""
    spec = classifier.spec
    classifier.predict_image(np.zeros((spec.height, spec.width, 3), np.uint8))
    return classifier


class ClassifierPool:
    def __init__(self, model_path, *, workers: int = 1, threads: int | None = None, make=TFLiteClassifier):
        self._pool: queue.Queue = queue.Queue()
        self._make = lambda: _warmed(make(model_path, threads=threads))
        first = self._make()
        self._pool.put(first)
        for _ in range(workers - 1):
            self._pool.put(self._make())
        self.workers = workers
        self.labels = list(first.labels)
        self.warnings = list(first.warnings)
        self.model_path = Path(model_path)
        self.id = model_id(model_path, first.metadata)
        self.info = self._describe(first)

    def new_classifier(self) -> TFLiteClassifier:
        """One more classifier of the same model, outside the pool (for the live source's thread)."""
        return self._make()

    def classify(self, rgb_uint8: np.ndarray, top_k: int) -> Classified:
        classifier = self._pool.get()
        try:
            start = time.perf_counter()
            prediction = predict(classifier.predict_image(rgb_uint8), classifier.labels, k=top_k)
            return Classified(prediction.to_dict(), time.perf_counter() - start)
        finally:
            self._pool.put(classifier)

    def _describe(self, classifier: TFLiteClassifier) -> dict:
        spec = classifier.spec
        metadata = classifier.metadata
        return {
            "id": self.id,
            "file": self.model_path.name,
            "labels": self.labels,
            "input": {"height": spec.height, "width": spec.width, "channels": spec.channels,
                      "channel_order": spec.channel_order, "dtype": classifier.input_dtype},
            "runtime": classifier.runtime,
            "delegate": classifier.delegate,
            "workers": self.workers,
            "metadata": dataclasses.asdict(metadata) if metadata is not None else None,
        }
