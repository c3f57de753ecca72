"""The images parity compares on: a run's split, a folder of class subfolders, or a flat folder of images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from edgecnn.errors import DataError
from edgecnn.imagesets import scan_folder
from edgecnn.rundir import RunDir

# --limit keeps the same images on every call, so two candidates limited alike are compared on the same set.
LIMIT_SEED = 0


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
        # The one scanner, lenient: empty class folders are passed over, and images without class
        # folders are an unlabelled set (agreement, no accuracy).
        folder = scan_folder(data, lenient=True)
        paths = [p for p, _ in folder.items]
        names = [None if i is None else folder.labels[i] for _, i in folder.items]
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
