"""``edgecnn evaluate``: accuracy, per-class precision/recall/F1 and the confusion matrix of a run's float model.

On the run's held-out test split by default (the split fixed in ``split.json``), another split, or
another class-folder tree whose classes are the run's. Images go through the device's
preprocessing (``data.load_arrays`` -> ``runtime.preprocess``); metrics are scikit-learn's.
Every result carries a degenerate-model verdict (``degenerate.py``), printed as a warning when the
model answers one class nearly everywhere or is no better than chance. The test-split result is the run's ``evaluation.json`` + ``confusion_matrix.png``; other splits
and folders get their own files (``evaluation_val.json``, ``evaluation_<folder>.json``), so the
held-out figure is never silently replaced.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgecnn.atomic import write_json
from edgecnn.errors import DataError, RunDirError
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import normalize
from edgecnn.training.data import folders as data_mod
from edgecnn.training.evaluate.degenerate import check_predictions
from edgecnn.training.models.model_io import load_keras_model
from edgecnn.training.plots import plot_confusion

SPLITS = ("train", "val", "test")


def evaluate_run(run, data=None, split: str = "test") -> dict:
    """Evaluate ``run``'s float.keras on one of its splits, or on the class-folder tree ``data``."""
    run = run if isinstance(run, RunDir) else RunDir(run)
    if split not in SPLITS:
        raise RunDirError(f"unknown split {split!r}; use train, val or test")
    model_path = run.require(run.float_model, f"edgecnn train DATA --out {run.path}")
    recipe = run.load_recipe()
    labels = run.labels()
    spec = data_mod.input_spec(recipe)
    if data is None:
        x, y = data_mod.load_arrays(run.split_items(split), spec)
        source, suffix = {"split": split}, "" if split == "test" else f"_{split}"
    else:
        x, y, root = _folder_arrays(data, labels, spec)
        source, suffix = {"data": str(root)}, f"_{_safe_name(root.name)}"
    if len(y) == 0:
        raise DataError(f"no images to evaluate in {source}; check the split or folder")

    model = load_keras_model(model_path)
    probabilities = model.predict(x, batch_size=256, verbose=0)
    result = {"run": str(run.path), "model": model_path.name, **source, **metrics(y, probabilities, labels)}
    verdict = check_predictions(y, np.asarray(probabilities).argmax(axis=1), labels,
                                split=source.get("split") or Path(source["data"]).name)
    result["degenerate"] = verdict.to_dict()
    if verdict.message():
        print(f"warning: {verdict.message()}", file=sys.stderr, flush=True)
    json_path = run.path / f"evaluation{suffix}.json"
    png_path = run.path / f"confusion_matrix{suffix}.png"
    plot_confusion(result["confusion_matrix"], labels, png_path,
                   title=f"{source.get('split') or Path(source['data']).name}: accuracy {result['accuracy']:.4f}")
    result["files"] = {"json": str(json_path), "confusion_matrix_png": str(png_path)}
    write_json(json_path, result)
    return result


def metrics(y_true, probabilities, labels: list[str]) -> dict:
    """accuracy, num_samples, per_class {label: precision, recall, f1, support}, averages, confusion_matrix."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix

    y_pred = np.asarray(probabilities).argmax(axis=1)
    indices = list(range(len(labels)))
    report = classification_report(y_true, y_pred, labels=indices, target_names=labels, output_dict=True,
                                   zero_division=0)
    per_class = {label: _scores(report[label]) for label in labels}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "num_samples": int(len(y_true)),
        "labels": list(labels),
        "per_class": per_class,
        "macro_avg": _scores(report["macro avg"]),
        "weighted_avg": _scores(report["weighted avg"]),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
    }


def _scores(row: dict) -> dict:
    return {"precision": float(row["precision"]), "recall": float(row["recall"]), "f1": float(row["f1-score"]),
            "support": int(row["support"])}


def _folder_arrays(data, labels: list[str], spec):
    """Normalized images and run-label indices of another class-folder tree (a subset of the run's classes)."""
    root, _ = data_mod.resolve_data(data)
    folder = data_mod.scan_folder(root, min_classes=1)
    unknown = [name for name in folder.labels if name not in labels]
    if unknown:
        raise DataError(f"{root} has classes the run does not know ({', '.join(unknown[:5])}); the run's classes "
                        f"are {', '.join(labels[:10])}{' ...' if len(labels) > 10 else ''}: rename or remove "
                        "those folders")
    to_run_index = [labels.index(name) for name in folder.labels]
    items = [(path, to_run_index[label]) for path, label in folder.items]
    pixels, kept, skipped = data_mod.decode_items(items, spec)
    data_mod.warn_skipped(skipped)
    return normalize(pixels, spec), np.asarray([label for _, label in kept], np.int64), root


def _safe_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return cleaned or "data"
