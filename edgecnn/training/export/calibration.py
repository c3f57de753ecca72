"""Representative data for int8 conversion: a run's training images or a user's image folder.

The converter runs these images through the float model to choose each activation's int8
range, so they must look like what the device will see: they go through the device half's
preprocessing (``imagesets.load_images`` -> ``runtime.preprocess``), and a folder given with
``--calibration-data`` must hold the model's classes, as real images of a usable size.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgecnn.errors import DataError
from edgecnn.imagesets import ImageSet, load_images, load_split, scan_folder
from edgecnn.runtime.preprocess import InputSpec, read_image

# TensorFlow's post-training quantization guide suggests a few hundred samples; more barely
# moves the ranges and costs conversion time.
CALIBRATION_SAMPLES = 200
# An image more than this many times smaller than the model input (per side) is upscaled into
# mush; it would calibrate ranges for blur, not for the camera's images.
MAX_UPSCALE = 4


@dataclasses.dataclass
class Calibration:
    images: ImageSet
    source: str  # "train split of RUN" or the folder
    labels: list[str]

    def representative_dataset(self):
        """The generator function TFLiteConverter.representative_dataset expects (batches of 1)."""
        images = self.images

        def generate():
            for i in range(len(images)):
                yield [images.inputs(i, i + 1)]

        return generate

    def to_dict(self) -> dict:
        return {"source": self.source, "samples": len(self.images)}


def from_run(run, spec: InputSpec, *, limit: int = CALIBRATION_SAMPLES) -> Calibration:
    """A seeded random subset of the run's train split (never validation or test images)."""
    images = load_split(run, "train", spec, limit=limit)
    return Calibration(images, f"train split of {run.path}", run.labels())


def from_folder(folder, spec: InputSpec, *, labels: list[str] | None, num_classes: int,
                limit: int = CALIBRATION_SAMPLES) -> Calibration:
    """Images of a class-folder tree, checked against the model's classes and input size.

    ``labels``: the model's labels when known (run, --labels); the folder's class names must be
    exactly those. Without them the folder's class names become the labels, and their number
    must equal the model's ``num_classes``.
    """
    folder = Path(folder)
    scanned = scan_folder(folder)
    check_classes(scanned.labels, labels, num_classes, folder)
    # Map folder classes onto the model's label order (the folder may list them differently).
    order = {name: i for i, name in enumerate(labels or scanned.labels)}
    items = [(path, order[scanned.labels[label]]) for path, label in scanned.items]
    check_sizes([path for path, _ in items[:8]], spec, folder)
    images = load_images(items, spec, what=f"calibration images in {folder}", limit=limit)
    return Calibration(images, str(folder), list(labels or scanned.labels))


def check_classes(found: list[str], labels: list[str] | None, num_classes: int, folder: Path) -> None:
    if labels is not None:
        missing, extra = sorted(set(labels) - set(found)), sorted(set(found) - set(labels))
        if missing or extra:
            parts = ([f"missing {', '.join(missing[:5])}"] if missing else []) + \
                    ([f"unknown {', '.join(extra[:5])}"] if extra else [])
            raise DataError(f"calibration data {folder} has classes that do not match the model's labels "
                            f"({'; '.join(parts)}); give one sub-folder per label: {', '.join(labels[:10])}")
    elif len(found) != num_classes:
        raise DataError(f"calibration data {folder} has {len(found)} class folders but the model has {num_classes} "
                        "outputs; give one sub-folder per class (in the model's class order), or --labels FILE")


def check_sizes(paths, spec: InputSpec, folder: Path) -> None:
    """Refuse images far smaller than the model input (see MAX_UPSCALE)."""
    for path in paths:
        height, width = read_image(path).shape[:2]
        if height * MAX_UPSCALE < spec.height or width * MAX_UPSCALE < spec.width:
            raise DataError(f"calibration image {path} is {width}x{height}, more than {MAX_UPSCALE}x smaller than the "
                            f"model's {spec.width}x{spec.height} input; calibrate with images like the ones the "
                            f"model will see (at least {-(-spec.width // MAX_UPSCALE)}x{-(-spec.height // MAX_UPSCALE)})")
