"""Float-vs-quantized parity: do two classifiers agree on the same images?

``run_parity`` feeds a reference and a candidate model (any pairing of Keras, float TFLite and
quantized TFLite, see ``predictors``) the same decoded images, each prepared with its own input
spec through ``runtime.preprocess`` (the code the device runs), and ``stats.compare_scores``
turns their scores into a ``report.ParityReport`` (the figures are described in ``stats``).
``gates.check_gates`` turns a report and the user's limits into a ``GateFailed`` (exit code 3).

The package is TF-free (numpy, OpenCV, LiteRT): two .tflite files compare on a device install.
A Keras model comes as a ``Predictor`` from the training half
(``edgecnn.training.evaluate.keras_predictor``); nothing here imports it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgecnn.errors import DataError, ModelError
from edgecnn.parity.data import ParityData
from edgecnn.parity.predictors import Predictor, SpecFlags, resolve_spec
from edgecnn.parity.report import ParityReport
from edgecnn.parity.stats import compare_scores
from edgecnn.runtime.preprocess import prepare_image, read_image

try:  # a progress bar when tqdm is there (the train extra); plain lines on a device install
    from tqdm import tqdm
except ModuleNotFoundError:  # pragma: no cover - exercised by the device-install test in a subprocess
    tqdm = None

# Keras predicts this many images per call; TFLite models (batch 1) loop inside the classifier.
# 64 keeps a 96x96x3 float batch at 7 MB while amortising the per-call overhead of Keras.
DEFAULT_BATCH = 64


# --- labels: the two models and the data must agree on them ------------------------------------

def reconcile_labels(reference: Predictor, candidate: Predictor, data: ParityData) -> tuple[list[str], list[str]]:
    """The class names both models use, and notes for the report. Raises on any mismatch."""
    notes: list[str] = []
    if reference.num_classes != candidate.num_classes:
        raise ModelError(
            f"{reference.path} has {reference.num_classes} classes but {candidate.path} has "
            f"{candidate.num_classes}; compare a model with an export of the same model"
        )
    if reference.labels is not None and candidate.labels is not None and reference.labels != candidate.labels:
        raise ModelError(
            f"the models have different labels: {reference.path} has {_short(reference.labels)} but "
            f"{candidate.path} has {_short(candidate.labels)}; compare a model with an export of the same model"
        )
    labels = reference.labels if reference.labels is not None else candidate.labels
    n = reference.num_classes
    if labels is not None and len(labels) != n:
        owner = reference if reference.labels is not None else candidate
        raise ModelError(f"{owner.path} has {n} outputs but {len(labels)} labels; re-export it with its own labels")
    if labels is None:
        data_classes = sorted({c for c in data.class_names if c is not None})
        if len(data_classes) == n:
            labels = data_classes
            notes.append(f"neither model carries labels; using the class folders of {data.source} in sorted order")
        else:
            labels = [str(i) for i in range(n)]
            notes.append("neither model carries labels; classes are shown by index")
    unknown = sorted({c for c in data.class_names if c is not None} - set(labels))
    if unknown:
        raise DataError(
            f"{data.source} has classes {_short(unknown)} that are not among the models' labels "
            f"{_short(labels)}; use images of the classes the models were trained on"
        )
    return labels, notes


def _short(names, shown: int = 8) -> str:
    names = list(names)
    listed = ", ".join(repr(n) for n in names[:shown])
    return f"[{listed}{', ...' if len(names) > shown else ''}] ({len(names)})"


# --- running both models ----------------------------------------------------------------------

class _PlainProgress:
    """tqdm's interface, as far as ``collect_scores`` uses it: one stderr line per quarter of the images."""

    def __init__(self, total: int, disable: bool):
        self.total, self.done, self.disable, self._shown = total, 0, disable, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, count: int) -> None:
        self.done += count
        quarter = self.done * 4 // max(self.total, 1)
        if not self.disable and quarter > self._shown:
            self._shown = quarter
            print(f"parity: {self.done}/{self.total} images", file=sys.stderr, flush=True)


def _progress(total: int, enabled: bool):
    if tqdm is None:
        return _PlainProgress(total, disable=not enabled)
    return tqdm(total=total, desc="parity", unit="img", file=sys.stderr, disable=not enabled, leave=False)


def collect_scores(reference: Predictor, candidate: Predictor, paths: list[Path], *,
                   batch_size: int = DEFAULT_BATCH, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores of both models on ``paths``: each image is decoded once and prepared per model spec."""
    same_spec = reference.spec == candidate.spec
    ref_scores, cand_scores = [], []
    with _progress(len(paths), progress) as bar:
        for start in range(0, len(paths), batch_size):
            images = [read_image(p) for p in paths[start:start + batch_size]]
            x_ref = np.stack([prepare_image(img, reference.spec) for img in images])
            x_cand = x_ref if same_spec else np.stack([prepare_image(img, candidate.spec) for img in images])
            ref_scores.append(reference.predict(x_ref))
            cand_scores.append(candidate.predict(x_cand))
            bar.update(len(images))
    return np.concatenate(ref_scores), np.concatenate(cand_scores)


def run_parity(reference: Predictor, candidate: Predictor, data: ParityData, *, flags: SpecFlags | None = None,
               batch_size: int = DEFAULT_BATCH, progress: bool = False) -> ParityReport:
    """Compare ``candidate`` with ``reference`` on ``data``; ``stats`` describes the report's figures."""
    labels, notes = reconcile_labels(reference, candidate, data)
    for this, other in ((reference, candidate), (candidate, reference)):
        note = resolve_spec(this, other, flags)
        if note:
            notes.append(note)
    if reference.spec.size != candidate.spec.size or reference.spec.channels != candidate.spec.channels:
        notes.append(
            f"input sizes differ ({reference.path.name}: {_size(reference)}, {candidate.path.name}: "
            f"{_size(candidate)}); each model gets its own resize of the same images"
        )
    ref_scores, cand_scores = collect_scores(reference, candidate, data.paths, batch_size=batch_size,
                                             progress=progress)
    index = {name: i for i, name in enumerate(labels)}
    y_true = np.array([index[c] for c in data.class_names]) if data.labelled else None
    report = compare_scores(ref_scores, cand_scores, labels=labels, y_true=y_true, paths=data.paths)
    report.reference = _model_info(reference, report.reference)
    report.candidate = _model_info(candidate, report.candidate)
    report.data = data.source
    report.notes = notes
    return report


def _size(p: Predictor) -> str:
    return f"{p.spec.height}x{p.spec.width}x{p.spec.channels}"


def _model_info(p: Predictor, accuracy: dict) -> dict:
    return {"path": str(p.path), "kind": p.kind, "description": p.description, "input": _size(p),
            "preprocessing": f"{p.spec.channel_order}, mean {list(p.spec.mean)}, std {list(p.spec.std)}, "
                             f"resize {p.spec.resize} (from {p.spec_source})", **accuracy}
