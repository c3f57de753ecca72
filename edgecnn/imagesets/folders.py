"""The one folder scanner: a class-folder tree (Keras' ``image_dataset_from_directory`` layout) as
labels and (path, label index) items.

Strict (the default, for training, evaluation and calibration): every class folder must hold
images and there must be ``min_classes`` of them; hidden files and folders are ignored.
``lenient=True`` (parity's data, as parity always read it): empty class folders are passed over,
one class is enough, hidden files are kept, and a folder with images but no class folders is an
unlabelled set (``labels == []``, every item's label ``None``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgecnn.errors import DataError
from edgecnn.runtime.preprocess import image_files

LAYOUT_HINT = "put images into one sub-folder per class (DATA/cat/1.jpg, DATA/dog/2.jpg)"


@dataclasses.dataclass
class ImageFolder:
    """A scanned folder: labels in index order and (absolute path, label index or None) items."""

    root: Path
    labels: list[str]
    items: list[tuple[Path, int | None]]
    ignored: int = 0  # non-image files

    @property
    def labelled(self) -> bool:
        return bool(self.labels)


def scan_folder(root, *, min_classes: int = 2, lenient: bool = False) -> ImageFolder:
    """Class folders and their image files; the checks that need no decoding.

    ``min_classes=1`` for evaluation data, where one class of a trained model may be tested alone.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data folder {root} does not exist; give a folder with one sub-folder per class")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if lenient:
        return _scan_lenient(root, class_dirs)
    if not class_dirs:
        loose, _ = image_files(root, recursive=False, skip_hidden=False)
        found = f"it holds {len(loose)} images but no sub-folders" if loose else "it is empty"
        raise DataError(f"data folder {root} has no class folders ({found}); {LAYOUT_HINT}")
    if len(class_dirs) < min_classes:
        raise DataError(f"data folder {root} has only one class folder ({class_dirs[0].name}); "
                        "a classifier needs at least 2: add a folder of images per class")
    items, ignored = [], 0
    for label, folder in enumerate(class_dirs):
        images, others = image_files(folder)
        ignored += others
        if not images:
            raise DataError(f"class folder {folder} has no images (.jpg, .png, .bmp, .webp, ...); "
                            "add images or remove the folder")
        items.extend((p, label) for p in images)
    return ImageFolder(root=root, labels=[d.name for d in class_dirs], items=items, ignored=ignored)


def _scan_lenient(root: Path, class_dirs: list[Path]) -> ImageFolder:
    """Class folders that hold images (labelled), else the images directly in ``root`` (unlabelled)."""
    labels, items, ignored = [], [], 0
    for folder in class_dirs:
        images, others = image_files(folder, skip_hidden=False)
        ignored += others
        if images:
            items.extend((p, len(labels)) for p in images)
            labels.append(folder.name)
    if not items:
        images, ignored = image_files(root, recursive=False, skip_hidden=False)
        items = [(p, None) for p in images]
    if not items:
        raise DataError(f"no images found in {root}; put images in one subfolder per class "
                        f"(e.g. {root}/cat/1.jpg) or pass a run directory")
    return ImageFolder(root=root, labels=labels, items=items, ignored=ignored)
