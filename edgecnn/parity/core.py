"""Float-vs-quantized parity: do two classifiers agree on the same images?

``run_parity`` feeds a reference and a candidate model (any pairing of Keras, float TFLite and
quantized TFLite, see ``predictors``) the same decoded images, each prepared with its own input
spec through ``runtime.preprocess`` (the code the device runs), and ``compare_scores`` turns
their scores into a ``ParityReport``:

- ``top1_agreement``: fraction of images where both pick the same class.
- ``top5_agreement`` (more than 5 classes only): fraction where the reference's top-1 class is
  among the candidate's five best (sklearn's ``top_k_accuracy_score`` with the reference's
  choice as truth).
- ``max_abs_error`` / ``mean_abs_error``: of the dequantized output scores (probabilities),
  over every image and class.
- each model's accuracy (when the data is labelled), ``accuracy_drop_pp`` = reference minus
  candidate in percentage points, and the same per class (per-class accuracy = recall).
- the images where the two disagree: path, true label, both predictions and their scores.

``check_gates`` turns a report and the user's limits into a ``GateFailed`` (exit code 3).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

from edgecnn.errors import DataError, GateFailed, ModelError
from edgecnn.parity.predictors import Predictor, SpecFlags, resolve_spec
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import is_image_file, prepare_image, read_image

# Keras predicts this many images per call; TFLite models (batch 1) loop inside the classifier.
# 64 keeps a 96x96x3 float batch at 7 MB while amortising the per-call overhead of Keras.
DEFAULT_BATCH = 64
# Disagreeing images listed on the terminal (all of them go into --json and parity_*.json).
SHOWN_DISAGREEMENTS = 10
# --limit keeps the same images on every call, so two candidates limited alike are compared on the same set.
LIMIT_SEED = 0
# Gates compare with this slack so that float rounding (1 - 0.98 = 0.0200000000000000018) does not fail
# a result that is exactly at the limit; it is far below one image in any real data set.
_ROUNDING = 1e-9


# --- the data both models see ----------------------------------------------------------------

@dataclasses.dataclass
class ParityData:
    """Images to compare on: paths with their class name (None when the folder is unlabelled)."""

    source: str
    paths: list[Path]
    class_names: list[str | None]

    @property
    def labelled(self) -> bool:
        return all(name is not None for name in self.class_names)


def load_parity_data(data, split: str = "test", limit: int | None = None) -> ParityData:
    """Images from a run directory's split, a folder of class subfolders, or a flat folder of images."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"--data {data} does not exist; pass a run directory or a folder of images")
    run = RunDir(data)
    if run.exists():
        labels = run.labels()
        items = run.split_items(split)
        if not items:
            raise DataError(f"the {split} split of run {data} is empty; choose another --split or re-split the run")
        paths = [p for p, _ in items]
        names = [labels[i] for _, i in items]
        source = f"run {data} ({split} split)"
    elif data.is_dir():
        paths, names = _scan_folder(data)
        source = f"folder {data}"
    else:
        raise DataError(f"--data {data} is a file; pass a run directory or a folder of images")
    if limit is not None:
        if limit < 1:
            raise DataError(f"--limit must be at least 1, got {limit}")
        if limit < len(paths):
            # A seeded random subset, not the first N: a folder lists its classes one after another.
            keep = sorted(np.random.default_rng(LIMIT_SEED).choice(len(paths), size=limit, replace=False))
            paths, names = [paths[i] for i in keep], [names[i] for i in keep]
    return ParityData(source=source, paths=paths, class_names=names)


def _scan_folder(folder: Path) -> tuple[list[Path], list[str | None]]:
    """One subfolder per class (labelled), or images directly in ``folder`` (unlabelled)."""
    paths: list[Path] = []
    names: list[str | None] = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        images = sorted(p for p in sub.rglob("*") if p.is_file() and is_image_file(p))
        paths += images
        names += [sub.name] * len(images)
    if not paths:
        paths = sorted(p for p in folder.iterdir() if p.is_file() and is_image_file(p))
        names = [None] * len(paths)
    if not paths:
        raise DataError(
            f"no images found in {folder}; put images in one subfolder per class (e.g. {folder}/cat/1.jpg) "
            "or pass a run directory"
        )
    return paths, names


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

def collect_scores(reference: Predictor, candidate: Predictor, paths: list[Path], *,
                   batch_size: int = DEFAULT_BATCH, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores of both models on ``paths``: each image is decoded once and prepared per model spec."""
    from tqdm import tqdm

    same_spec = reference.spec == candidate.spec
    ref_scores, cand_scores = [], []
    with tqdm(total=len(paths), desc="parity", unit="img", file=sys.stderr, disable=not progress,
              leave=False) as bar:
        for start in range(0, len(paths), batch_size):
            images = [read_image(p) for p in paths[start:start + batch_size]]
            x_ref = np.stack([prepare_image(img, reference.spec) for img in images])
            x_cand = x_ref if same_spec else np.stack([prepare_image(img, candidate.spec) for img in images])
            ref_scores.append(reference.predict(x_ref))
            cand_scores.append(candidate.predict(x_cand))
            bar.update(len(images))
    return np.concatenate(ref_scores), np.concatenate(cand_scores)


def run_parity(reference: Predictor, candidate: Predictor, data: ParityData, *, flags: SpecFlags | None = None,
               batch_size: int = DEFAULT_BATCH, progress: bool = False) -> "ParityReport":
    """Compare ``candidate`` with ``reference`` on ``data``; see the module docstring for the fields."""
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


# --- the report -------------------------------------------------------------------------------

@dataclasses.dataclass
class ParityReport:
    num_samples: int
    num_classes: int
    top1_agreement: float
    top5_agreement: float | None
    max_abs_error: float
    mean_abs_error: float
    reference: dict  # path, kind, description, input, preprocessing, accuracy
    candidate: dict
    accuracy_drop_pp: float | None  # reference accuracy minus candidate accuracy, percentage points
    per_class: list[dict]
    disagreements: list[dict]
    data: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def disagreement(self) -> float:
        return 1.0 - self.top1_agreement

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare_scores(ref_scores: np.ndarray, cand_scores: np.ndarray, *, labels: list[str],
                   y_true: np.ndarray | None = None, paths=None) -> ParityReport:
    """The parity report of two score matrices (N, classes) over the same images."""
    from sklearn.metrics import accuracy_score, recall_score, top_k_accuracy_score

    ref_scores = np.asarray(ref_scores, dtype=np.float32)
    cand_scores = np.asarray(cand_scores, dtype=np.float32)
    if ref_scores.shape != cand_scores.shape or ref_scores.ndim != 2 or len(ref_scores) == 0:
        raise ModelError(f"cannot compare scores of shapes {ref_scores.shape} and {cand_scores.shape}")
    n, classes = ref_scores.shape
    ref_pred, cand_pred = ref_scores.argmax(axis=1), cand_scores.argmax(axis=1)
    all_classes = np.arange(classes)
    top5 = None
    if classes > 5:
        top5 = float(top_k_accuracy_score(ref_pred, cand_scores, k=5, labels=all_classes))
    abs_err = np.abs(ref_scores - cand_scores)

    ref_acc = cand_acc = drop = None
    per_class: list[dict] = []
    if y_true is not None:
        ref_acc = float(accuracy_score(y_true, ref_pred))
        cand_acc = float(accuracy_score(y_true, cand_pred))
        drop = (ref_acc - cand_acc) * 100.0
        present = np.unique(y_true)
        ref_rec = recall_score(y_true, ref_pred, labels=present, average=None, zero_division=0)
        cand_rec = recall_score(y_true, cand_pred, labels=present, average=None, zero_division=0)
        for cls, r, c in zip(present, ref_rec, cand_rec):
            per_class.append({"label": labels[cls], "support": int((y_true == cls).sum()),
                              "reference_accuracy": float(r), "candidate_accuracy": float(c),
                              "delta_pp": float((c - r) * 100.0)})

    disagreements = []
    for i in np.flatnonzero(ref_pred != cand_pred):
        disagreements.append({
            "path": str(paths[i]) if paths is not None else str(i),
            "label": labels[y_true[i]] if y_true is not None else None,
            "reference": labels[ref_pred[i]], "reference_score": float(ref_scores[i, ref_pred[i]]),
            "candidate": labels[cand_pred[i]], "candidate_score": float(cand_scores[i, cand_pred[i]]),
        })
    return ParityReport(
        num_samples=n, num_classes=classes,
        top1_agreement=float(np.mean(ref_pred == cand_pred)), top5_agreement=top5,
        max_abs_error=float(abs_err.max()), mean_abs_error=float(abs_err.mean()),
        reference={"accuracy": ref_acc}, candidate={"accuracy": cand_acc}, accuracy_drop_pp=drop,
        per_class=per_class, disagreements=disagreements,
    )


# --- gates ------------------------------------------------------------------------------------

def validate_gates(max_disagreement: float | None = None, max_accuracy_drop: float | None = None) -> None:
    """Check the gate values themselves (before any work is done)."""
    if max_disagreement is not None and not 0 <= max_disagreement <= 1:
        raise DataError(f"--max-disagreement is a fraction between 0 and 1 (0.01 = 1%), got {max_disagreement}")
    if max_accuracy_drop is not None and max_accuracy_drop < 0:
        raise DataError(f"--max-accuracy-drop is in percentage points and must be >= 0, got {max_accuracy_drop}")


def check_gates(report: ParityReport, max_disagreement: float | None = None,
                max_accuracy_drop: float | None = None) -> None:
    """Raise GateFailed (exit code 3) when the report exceeds a limit the user gave.

    ``max_disagreement`` is a fraction of images (0.01 = 1%); ``max_accuracy_drop`` is in
    percentage points of accuracy (0.5 = half a point), reference minus candidate.
    """
    validate_gates(max_disagreement, max_accuracy_drop)
    failures = []
    if max_disagreement is not None and report.disagreement > max_disagreement + _ROUNDING:
        disagreeing = len(report.disagreements)
        failures.append(f"disagreement {report.disagreement:.2%} ({disagreeing} of {report.num_samples} images) "
                        f"exceeds --max-disagreement {max_disagreement:.2%}")
    if max_accuracy_drop is not None:
        if report.accuracy_drop_pp is None:
            raise DataError("--max-accuracy-drop needs labelled images (one subfolder per class, or a run directory)")
        if report.accuracy_drop_pp > max_accuracy_drop + _ROUNDING:
            failures.append(f"accuracy drop {report.accuracy_drop_pp:.2f} pp "
                            f"({report.reference['accuracy']:.2%} -> {report.candidate['accuracy']:.2%}) "
                            f"exceeds --max-accuracy-drop {max_accuracy_drop:g} pp")
    if failures:
        raise GateFailed(f"parity gate failed: {'; '.join(failures)}; the candidate does not match its reference")


def report_name(candidate_path) -> str:
    """The name parity files of a candidate get in a run: model_int8.tflite -> 'int8' (parity_int8.json)."""
    stem = Path(candidate_path).stem
    return stem[len("model_"):] if stem.startswith("model_") and len(stem) > len("model_") else stem


# --- terminal output --------------------------------------------------------------------------

def format_report(report: ParityReport) -> str:
    """The report as a few aligned lines for the terminal."""
    ref, cand = report.reference, report.candidate
    lines = [
        f"reference  {ref['path']}  [{ref['description']}, {ref['input']}]",
        f"candidate  {cand['path']}  [{cand['description']}, {cand['input']}]",
        f"data       {report.data}: {report.num_samples} images, {report.num_classes} classes",
    ]
    lines += [f"note       {note}" for note in report.notes]
    rows = [("top-1 agreement", f"{report.top1_agreement:.2%}  ({len(report.disagreements)} disagree)")]
    if report.top5_agreement is not None:
        rows.append(("top-5 agreement", f"{report.top5_agreement:.2%}"))
    rows += [("max abs error", f"{report.max_abs_error:.4f}"), ("mean abs error", f"{report.mean_abs_error:.5f}")]
    if report.accuracy_drop_pp is not None:
        rows += [("reference accuracy", f"{ref['accuracy']:.2%}"), ("candidate accuracy", f"{cand['accuracy']:.2%}"),
                 ("accuracy drop", f"{report.accuracy_drop_pp:+.2f} pp")]
    width = max(len(name) for name, _ in rows)
    lines += [""] + [f"  {name:<{width}}  {value}" for name, value in rows]
    changed = [c for c in report.per_class if c["delta_pp"] != 0]
    if changed:
        lines += ["", "  per-class accuracy that changed (reference -> candidate):"]
        for c in sorted(changed, key=lambda c: c["delta_pp"])[:SHOWN_DISAGREEMENTS]:
            lines.append(f"    {c['label']:<16} {c['reference_accuracy']:7.2%} -> {c['candidate_accuracy']:7.2%}"
                         f"  ({c['delta_pp']:+.2f} pp, {c['support']} images)")
    if report.disagreements:
        lines += ["", "  disagreements (reference -> candidate):"]
        for d in report.disagreements[:SHOWN_DISAGREEMENTS]:
            truth = f"  [true {d['label']}]" if d["label"] is not None else ""
            lines.append(f"    {d['path']}: {d['reference']} ({d['reference_score']:.2f}) -> "
                         f"{d['candidate']} ({d['candidate_score']:.2f}){truth}")
        more = len(report.disagreements) - SHOWN_DISAGREEMENTS
        if more > 0:
            lines.append(f"    ... and {more} more")
    return "\n".join(lines)
