"""The images an explanation is asked for: files or folders, decoded once at model size, unreadable ones counted."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import DataError
from edgecnn.imagesets.decoded import decode_items, warn_skipped
from edgecnn.runtime.preprocess import InputSpec, image_files

MAX_IMAGES = 200  # default cap: an explanation set, not an evaluation


def collect_paths(paths) -> list[Path]:
    """Image files named directly or found (recursively) in folders, in the order given."""
    found: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found += image_files(path)[0]
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(f"{path} does not exist; give image files or folders with --images")
    if not found:
        raise DataError(f"no image files ({', '.join(sorted({'.jpg', '.png', '.bmp'}))} ...) in "
                        f"{', '.join(map(str, paths))}")
    return found


def load_for_explain(items, spec: InputSpec, *, limit: int = MAX_IMAGES):
    """(pixels N x h x w x c in the model's order, kept (path, label) items, skipped count).

    Unreadable files are skipped with one counted warning (as ``classify`` does); none readable is an error.
    """
    items = list(items)[:limit]
    pixels, kept, skipped = decode_items(items, spec)
    warn_skipped(skipped)
    if not kept:
        raise DataError(f"none of the {len(items)} images could be decoded; check the files")
    return pixels, kept, len(skipped)


def items_of(paths) -> list[tuple[Path, int]]:
    """Unlabelled (path, -1) items; a file named directly is kept even if undecodable, to be counted."""
    return [(p, -1) for p in collect_paths(paths)]


def display_rgb(pixels: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Model-order pixels (RGB, BGR or GRAY) as RGB for pictures."""
    if spec.channel_order == "BGR":
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if spec.channel_order == "GRAY":
        return cv2.cvtColor(pixels[..., 0] if pixels.ndim == 3 else pixels, cv2.COLOR_GRAY2RGB)
    return pixels
