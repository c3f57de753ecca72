"""Built-in datasets, written once as ordinary class-folder trees so they load like user data.

- ``digits``: scikit-learn's 1,797 real handwritten 8x8 digits (white strokes on black), classes "0".."9".
- ``shapes``: procedurally drawn shapes (circle, cross, line, square, triangle) with random colour,
  position, scale, rotation, background and noise; the same seed gives the same images, any size.

Nothing is downloaded: ``load_digits`` ships inside scikit-learn. Trees are written into the
cache folder (``$EDGECNN_CACHE`` or ``~/.cache/edgecnn``) under a temporary name and renamed
when complete, so an interrupted write never leaves a half dataset that a later run trusts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import DataError

BUILTIN_DATASETS = {
    "digits": "scikit-learn's 1,797 handwritten digits (8x8, gray), 10 classes",
    "shapes": "procedural shapes (64x64 RGB, 500 per class), 5 classes",
}
SHAPE_CLASSES = ("circle", "cross", "line", "square", "triangle")


def cache_dir() -> Path:
    """Where built-in datasets are written: $EDGECNN_CACHE, else ~/.cache/edgecnn."""
    configured = os.environ.get("EDGECNN_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "edgecnn"


def builtin_dataset(name: str) -> Path:
    """The folder of built-in dataset ``name``, written on first use."""
    if name == "digits":
        return _ensure(cache_dir() / "datasets" / "digits-v1", write_digits)
    if name == "shapes":
        return _ensure(cache_dir() / "datasets" / "shapes-v2-64px-500-seed0", write_shapes)
    raise DataError(f"unknown built-in dataset {name!r}; built-ins are {', '.join(BUILTIN_DATASETS)}")


def _ensure(folder: Path, writer) -> Path:
    """``folder`` if it exists, else ``writer(temporary folder)`` renamed into place."""
    if folder.is_dir():
        return folder
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create the dataset cache {folder.parent} ({exc.strerror}); "
                        "set EDGECNN_CACHE to a writable folder") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        writer(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():  # not a concurrent writer that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, encoded = cv2.imencode(".png", image)
    if not ok:  # pragma: no cover - OpenCV always encodes uint8 PNG
        raise DataError(f"OpenCV could not encode {path}")
    path.write_bytes(encoded.tobytes())


def write_digits(root) -> Path:
    """scikit-learn's digits as ``root/<digit>/<index>.png`` (8x8 gray, 0..16 scaled to 0..255)."""
    from sklearn.datasets import load_digits

    root = Path(root)
    digits = load_digits()
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for index, (image, target) in enumerate(zip(images, digits.target)):
        folder = root / str(int(target))
        folder.mkdir(parents=True, exist_ok=True)
        _write_png(folder / f"{index:04d}.png", image)
    return root


def write_shapes(root, *, size: int = 64, per_class: int = 500, seed: int = 0) -> Path:
    """Procedural shapes as ``root/<shape>/<index>.png``; the same arguments give the same files."""
    if size < 8 or per_class < 1:
        raise DataError(f"shapes needs size >= 8 and per_class >= 1, got size {size}, per_class {per_class}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for shape in SHAPE_CLASSES:
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            _write_png(folder / f"{index:04d}.png", cv2.cvtColor(draw_shape(shape, size, rng), cv2.COLOR_RGB2BGR))
    return root


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One size x size RGB uint8 image of ``shape`` on a random background, with noise."""
    background = rng.integers(0, 256, 3)
    colour = _distinct_colour(background, rng)
    image = np.empty((size, size, 3), np.uint8)
    image[:] = background
    scale = rng.uniform(0.2, 0.4) * size
    centre = rng.uniform(0.35, 0.65, 2) * size
    angle = rng.uniform(0, 2 * np.pi)
    thickness = max(1, int(round(size / 12)))
    colour_t = tuple(int(c) for c in colour)
    if shape == "circle":
        cv2.circle(image, _point(centre), int(round(scale)), colour_t, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.fillPoly(image, [_polygon(centre, scale, angle, 4)], colour_t, cv2.LINE_AA)
    elif shape == "triangle":
        cv2.fillPoly(image, [_polygon(centre, scale, angle, 3)], colour_t, cv2.LINE_AA)
    elif shape == "line":
        ends = _polygon(centre, scale, angle, 2)
        cv2.line(image, tuple(ends[0]), tuple(ends[1]), colour_t, thickness, cv2.LINE_AA)
    elif shape == "cross":
        for turn in (0.0, np.pi / 2):
            ends = _polygon(centre, scale, angle + turn, 2)
            cv2.line(image, tuple(ends[0]), tuple(ends[1]), colour_t, thickness, cv2.LINE_AA)
    else:
        raise DataError(f"unknown shape {shape!r}; shapes are {', '.join(SHAPE_CLASSES)}")
    noise = rng.normal(0, 8, image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _distinct_colour(background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Redraw until the shape's brightness differs clearly from the background's: colours alone can be
    # near-identical in brightness, and then even a grayscale model could not see the shape.
    while True:
        colour = rng.integers(0, 256, 3)
        if abs(_luma(colour) - _luma(background)) > 80:
            return colour


def _luma(rgb) -> float:
    return 0.299 * float(rgb[0]) + 0.587 * float(rgb[1]) + 0.114 * float(rgb[2])


def _point(xy) -> tuple[int, int]:
    return int(round(xy[0])), int(round(xy[1]))


def _polygon(centre, radius, angle, corners) -> np.ndarray:
    turns = angle + np.arange(corners) * 2 * np.pi / corners
    points = np.stack([centre[0] + radius * np.cos(turns), centre[1] + radius * np.sin(turns)], axis=1)
    return np.rint(points).astype(np.int32)
