"""The run directory: the only state that pipeline stages share.

Each stage reads the artifacts it needs from here and writes new ones atomically, never
mutating its input, so any stage can be re-run or resumed. This module only names the
files and reads the small JSON/YAML ones; it imports neither TensorFlow nor OpenCV.

    runs/NAME/
      recipe.yaml            resolved recipe (model, size, normalization, split seed, hyperparameters)
      labels.txt             class names, one per line, index order
      split.json             {"data_root": ..., "train"|"val"|"test": [[relative_path, label_index], ...]}
      float.keras            best float model (tf_keras), written when training finishes
      checkpoints/           last-epoch weights + state for --resume
      history.json, curves.png
      evaluation.json, confusion_matrix.png
      pruned.keras, prune_report.json
      qat.keras, qat_report.json
      model_<source>_<mode>.tflite  exports named for the model they came from: model_float_int8,
                             model_pruned_fp16, model_pruned_qat_int8 (+ _gpu ...); see export_plan
      parity_<name>.json, parity_layers_<name>.csv
      benchmark.json/.csv/.png, deploy.json, report.html, explain/
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from edgecnn.errors import RunDirError
from edgecnn.recipe import Recipe, resolve


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    # --- artifact paths -------------------------------------------------------------
    recipe = property(lambda self: self.path / "recipe.yaml")
    labels_file = property(lambda self: self.path / "labels.txt")
    split = property(lambda self: self.path / "split.json")
    float_model = property(lambda self: self.path / "float.keras")
    checkpoints = property(lambda self: self.path / "checkpoints")
    history = property(lambda self: self.path / "history.json")
    curves_png = property(lambda self: self.path / "curves.png")
    evaluation = property(lambda self: self.path / "evaluation.json")
    confusion_png = property(lambda self: self.path / "confusion_matrix.png")
    pruned_model = property(lambda self: self.path / "pruned.keras")
    prune_report = property(lambda self: self.path / "prune_report.json")
    qat_model = property(lambda self: self.path / "qat.keras")
    qat_report = property(lambda self: self.path / "qat_report.json")
    benchmark_json = property(lambda self: self.path / "benchmark.json")
    report_html = property(lambda self: self.path / "report.html")

    def clear(self) -> None:
        """Create the run directory, or empty it (``--overwrite``) once the new run has been checked."""
        if not self.path.exists():
            self.path.mkdir(parents=True)
            return
        for child in self.path.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()

    # --- checks and small readers -----------------------------------------------------
    def exists(self) -> bool:
        return self.path.is_dir() and self.recipe.is_file()

    def require_run(self) -> "RunDir":
        """This run if it holds a recipe.yaml, else one line that says what the folder is (``not_a_run``)."""
        if not self.exists():
            raise RunDirError(not_a_run(self.path))
        return self

    def require(self, artifact: Path, made_by: str) -> Path:
        """``artifact`` if present, else a one-line error naming the command that makes it."""
        if not self.exists():
            self.require_run()
        if not artifact.exists():
            raise RunDirError(f"{self.path} has no {artifact.name}; run '{made_by}' first")
        return artifact

    def labels(self) -> list[str]:
        self.require(self.labels_file, f"edgecnn train DATA --out {self.path}")
        return [line.strip() for line in self.labels_file.read_text(encoding="utf-8").splitlines() if line.strip()]

    def load_recipe(self) -> Recipe:
        """The run's resolved recipe; keys an older recipe.yaml lacks take today's defaults."""
        self.require(self.recipe, f"edgecnn train DATA --out {self.path}")
        raw = yaml.safe_load(self.recipe.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise RunDirError(f"{self.recipe} is not a mapping of recipe sections; train the run again with --overwrite")
        return resolve(raw, source=str(self.recipe), saved=True)

    def load_split(self) -> dict:
        self.require(self.split, f"edgecnn train DATA --out {self.path}")
        return json.loads(self.split.read_text(encoding="utf-8"))

    def split_items(self, name: str) -> list[tuple[Path, int]]:
        """(absolute image path, label index) pairs of one split: 'train', 'val' or 'test'."""
        split = self.load_split()
        if name not in ("train", "val", "test"):
            raise RunDirError(f"unknown split {name!r}; use train, val or test")
        root = Path(split["data_root"])
        return [(root / rel, int(label)) for rel, label in split[name]]


# --- a folder that is not a run: say what it is, never suggest writing into a data folder ------------
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm",
                             ".pbm", ".pnm"})  # runtime.preprocess.IMAGE_EXTENSIONS (kept free of OpenCV here)


def not_a_run(path) -> str:
    """Why ``path`` cannot be used as a run, and the command that makes one.

    A data folder (class sub-folders of images) is named as such, with a run folder beside it to train
    into; ``--out PATH`` is suggested only for a folder that does not exist or is empty. Every command that
    takes a RUN (evaluate, prune, qat, export, benchmark, explain) says this."""
    path = Path(path)
    if not path.exists():
        return f"run directory {path} does not exist; create it with 'edgecnn train DATA --out {path}'"
    if not path.is_dir():
        return f"{path} is a file, not a run directory; pass the folder 'edgecnn train DATA --out RUN' made"
    classes, images = _image_counts(path)
    name = path.resolve().name or "run"
    if classes:
        return (f"{path} is not an edgecnn run: this looks like a data folder with {classes} "
                f"class{'es' if classes != 1 else ''} ({images} images): train it with "
                f"'edgecnn train {path} --out runs/{name}'")
    if images:
        return (f"{path} is not an edgecnn run: it holds {images} images but no class folders; classify them with "
                f"'edgecnn classify MODEL {path}', or put them in one sub-folder per class and train into "
                f"--out runs/{name}")
    if not any(path.iterdir()):
        return f"{path} is an empty folder, not a run; create one with 'edgecnn train DATA --out {path}'"
    return (f"{path} is not an edgecnn run (no recipe.yaml); pass the folder 'edgecnn train DATA --out RUN' made, "
            "with a RUN of its own")


def _image_counts(folder: Path) -> tuple[int, int]:
    """(sub-folders holding images, images in them), or (0, images directly in ``folder``)."""
    classes = images = 0
    try:
        children = list(folder.iterdir())
        for child in children:
            if child.is_dir():
                found = sum(1 for f in child.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
                classes, images = classes + (found > 0), images + found
    except OSError:  # unreadable: let the caller's own read say so
        return 0, 0
    if classes:
        return classes, images
    return 0, sum(1 for f in children if f.suffix.lower() in _IMAGE_SUFFIXES)
