"""Class folders for tests: random PNGs of a given size, written with OpenCV."""

from pathlib import Path

import cv2
import numpy as np


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def make_folder(root: Path, classes=("cat", "dog"), per_class=4, size=20) -> Path:
    rng = np.random.default_rng(0)
    for c in classes:
        for i in range(per_class):
            write_png(root / c / f"{i}.png", rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return root
