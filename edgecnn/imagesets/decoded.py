"""Decoded image sets: images read and resized once, kept as uint8 in the model's size and channel order.

Decoding is the device half's (``edgecnn.runtime.preprocess``), so training, fine-tuning and
calibration see the pixels the device will see; ``ImageSet.inputs`` normalizes with
``preprocess.normalize`` itself. uint8 costs a quarter of float32's memory.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from edgecnn.errors import DataError, RunDirError
from edgecnn.runtime.preprocess import InputSpec, model_pixels_from_rgb, normalize, read_image


@dataclasses.dataclass
class ImageSet:
    """Images in the model's size and channel order (uint8, N x H x W x C) and their labels."""

    pixels: np.ndarray
    labels: np.ndarray
    spec: InputSpec

    def __len__(self) -> int:
        return len(self.labels)

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Normalized float32 model input for images ``start:stop``."""
        return normalize(self.pixels[start:stop], self.spec)


def decode_items(items, spec: InputSpec, *, skip_unreadable: bool = True):
    """Decode and resize images once: (uint8 array N x h x w x c, kept items, [(path, reason)] skipped).

    OpenCV releases the GIL while decoding, so a thread per core decodes in parallel.
    """
    items = list(items)
    pixels = np.empty((len(items), spec.height, spec.width, spec.channels), np.uint8)

    def decode(index):
        path = items[index][0]
        try:
            pixels[index] = model_pixels_from_rgb(read_image(path), spec)
            return None
        except DataError as exc:
            if not skip_unreadable:
                raise
            return path, str(exc)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        failures = list(pool.map(decode, range(len(items))))
    keep = [i for i, failure in enumerate(failures) if failure is None]
    skipped = [failure for failure in failures if failure is not None]
    return pixels[keep], [items[i] for i in keep], skipped


def warn_skipped(skipped, out=None) -> None:
    """One counted warning for unreadable images, naming the first few."""
    if not skipped:
        return
    out = out or sys.stderr
    shown = "; ".join(str(path) for path, _ in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    print(f"warning: skipped {len(skipped)} unreadable image(s): {shown}{more} "
          f"(first reason: {skipped[0][1]})", file=out)


def load_images(items, spec: InputSpec, *, what: str = "images", limit: int | None = None,
                seed: int = 0) -> ImageSet:
    """(path, label) pairs decoded and resized for ``spec``; ``limit`` keeps a seeded random subset.

    Unreadable files are skipped with one counted warning, as in training.
    """
    items = list(items)
    if not items:
        raise DataError(f"no {what} to load; check the run's split.json or the folder")
    if limit is not None and len(items) > limit:
        order = np.random.default_rng(seed).permutation(len(items))[:limit]
        items = [items[i] for i in sorted(order)]
    pixels, kept, skipped = decode_items(items, spec)
    warn_skipped(skipped)
    if not kept:
        raise DataError(f"none of the {len(items)} {what} could be read; check the files")
    return ImageSet(pixels, np.array([label for _, label in kept], np.int64), spec)


def load_split(run, split: str, spec: InputSpec, *, limit: int | None = None) -> ImageSet:
    """One split ('train', 'val', 'test') of a run directory, preprocessed for ``spec``."""
    items = run.split_items(split)
    if not items:
        raise RunDirError(f"{run.path}/split.json has no images in its {split} split; retrain with more data")
    return load_images(items, spec, what=f"{split} images", limit=limit)
