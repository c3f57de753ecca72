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

    def require(self, artifact: Path, made_by: str) -> Path:
        """``artifact`` if present, else a one-line error naming the command that makes it."""
        if not self.path.is_dir():
            raise RunDirError(f"run directory {self.path} does not exist; create it with 'edgecnn train DATA --out {self.path}'")
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
