"""Image-folder data for training: find it, check it, split it, and feed it to Keras through tf.data.

Scanning and decoding are ``edgecnn.imagesets``' (TF-free, shared with fine-tuning, calibration
and parity). The layout is Keras' ``image_dataset_from_directory`` / torchvision's ImageFolder: one sub-folder
per class, images anywhere below it. Non-image files are ignored; unreadable images are skipped
with one counted warning. Images are decoded and resized exactly once, by the device half's
``edgecnn.runtime.preprocess`` (the code that runs on the Pi), so training sees the pixels the
device will see; normalization then follows the recipe's mean/std.

Pipeline: decoded uint8 images (model size, model channel order) in memory -> shuffle -> batch ->
augmentation (tf_keras preprocessing layers, on the graph, training only) -> normalize -> prefetch.
Holding uint8 at model size costs N x size x size x channels bytes (20,000 images at 96 px:
550 MB), and makes every epoch after the first decode-free.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgecnn.errors import DataError

# The one scanner and decoder live in the TF-free ``edgecnn.imagesets`` (parity uses them too, on a device
# install); training's callers reach them through this module as before.
from edgecnn.imagesets import LAYOUT_HINT, ImageFolder, decode_items, scan_folder, warn_skipped  # noqa: F401
from edgecnn.runtime.preprocess import InputSpec, prepare_image, read_image
from edgecnn.training.data.builtin import BUILTIN_DATASETS, builtin_dataset

# One reading of a recipe's input description for every stage (train, prune, QAT, export, parity).
from edgecnn.training.data.run_inputs import input_spec  # noqa: F401
from edgecnn.training.keras_compat import keras, tf

# One image each for validation and test leaves at most 3 to learn a class from; fewer is not a classifier.
MIN_IMAGES_PER_CLASS = 5


def resolve_data(data) -> tuple[Path, str | None]:
    """(folder, built-in name or None) for a DATA argument: a folder, or the name of a built-in dataset."""
    text = str(data)
    path = Path(text).expanduser()
    if path.is_dir():
        return path.resolve(), None
    if text in BUILTIN_DATASETS:
        return builtin_dataset(text).resolve(), text
    if path.exists():
        raise DataError(f"{path} is a file, not a folder; {LAYOUT_HINT}, or use a built-in: "
                        f"{', '.join(BUILTIN_DATASETS)}")
    raise DataError(f"data folder {path} does not exist; give a folder with one sub-folder per class, "
                    f"or a built-in dataset: {', '.join(BUILTIN_DATASETS)}")


# --- checks -----------------------------------------------------------------------------------

def check_class_counts(items, labels) -> None:
    """Every class must keep enough readable images for a train/val/test split."""
    counts = np.bincount([label for _, label in items], minlength=len(labels))
    for label, count in zip(labels, counts):
        if count < MIN_IMAGES_PER_CLASS:
            raise DataError(f"class {label!r} has {count} readable image(s); edgecnn needs at least "
                            f"{MIN_IMAGES_PER_CLASS} per class (some to train on, one each to validate and test): add images")


def load_arrays(items, spec: InputSpec) -> tuple[np.ndarray, np.ndarray]:
    """(normalized float32 images N x h x w x c, int64 labels) for (path, label) items.

    Exactly the device's preprocessing (``runtime.preprocess.prepare_image``): evaluation, parity
    and calibration use this, so they see what the device sees. Unreadable images raise DataError.
    """
    items = list(items)
    x = np.empty((len(items), spec.height, spec.width, spec.channels), np.float32)

    def decode(index):
        x[index] = prepare_image(read_image(items[index][0]), spec)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(decode, range(len(items))))
    return x, np.asarray([label for _, label in items], dtype=np.int64)


# --- split ------------------------------------------------------------------------------------

def split_items(items, num_classes: int, *, val_fraction: float, test_fraction: float, seed: int) -> dict:
    """Stratified train/val/test split of (path, label) items, reproducible from ``seed``."""
    from sklearn.model_selection import train_test_split

    items = sorted(items, key=lambda item: str(item[0]))
    n = len(items)
    n_test = max(num_classes, int(round(n * test_fraction)))
    n_val = max(num_classes, int(round(n * val_fraction)))
    if n - n_test - n_val < num_classes:
        raise DataError(f"{n} images in {num_classes} classes are too few to split into train, validation "
                        f"and test sets; add images (at least {MIN_IMAGES_PER_CLASS} per class, more is better)")
    labels = [label for _, label in items]
    try:
        rest, test = train_test_split(items, test_size=n_test, stratify=labels, random_state=seed)
        train, val = train_test_split(rest, test_size=n_val, stratify=[label for _, label in rest],
                                      random_state=seed)
    except ValueError as exc:  # sklearn: a class too small to stratify
        raise DataError(f"cannot split the data stratified by class ({exc}); add images to the smallest classes") \
            from None
    return {"train": train, "val": val, "test": test}


def split_to_json(root: Path, splits: dict, skipped=()) -> dict:
    """The ``split.json`` document (format in ``edgecnn/rundir.py``): paths relative to ``root``."""
    doc = {"data_root": str(root)}
    for name in ("train", "val", "test"):
        doc[name] = [[Path(path).relative_to(root).as_posix(), int(label)] for path, label in splits[name]]
    doc["skipped"] = [[str(path), reason] for path, reason in skipped]
    return doc


# --- tf.data ----------------------------------------------------------------------------------

def augmentation_layers(*, flip: bool = True, seed: int | None = None):
    """Mild, label-preserving augmentation as tf_keras preprocessing layers (run on the tf.data graph).

    Works on 0..255 pixels before normalization. ``flip`` is off for data where mirroring changes
    the class (digits, text).
    """
    layers = [keras.layers.RandomFlip("horizontal", seed=seed)] if flip else []
    layers += [
        keras.layers.RandomRotation(0.04, fill_mode="nearest", seed=seed),  # about +-15 degrees
        keras.layers.RandomZoom(0.1, fill_mode="nearest", seed=seed),
        keras.layers.RandomTranslation(0.08, 0.08, fill_mode="nearest", seed=seed),
        keras.layers.RandomBrightness(0.1, value_range=(0.0, 255.0), seed=seed),
        keras.layers.RandomContrast(0.1, seed=seed),
    ]
    return keras.Sequential(layers, name="augmentation")


def make_dataset(pixels: np.ndarray, labels: np.ndarray, spec: InputSpec, *, num_classes: int,
                 batch_size: int, training: bool, augment: bool = True, flip: bool = True, seed: int = 0):
    """A batched tf.data.Dataset of (normalized float32 images, one-hot labels) from decoded uint8 pixels."""
    dataset = _array_dataset(pixels, np.asarray(labels, np.int64))
    if training:
        dataset = dataset.shuffle(len(pixels), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    mean = tf.constant(spec.mean, tf.float32)
    std = tf.constant(spec.std, tf.float32)
    augmenter = augmentation_layers(flip=flip, seed=seed) if (training and augment) else None

    def to_model_input(images, label_ids):
        images = tf.cast(images, tf.float32)
        if augmenter is not None:
            # Augmentation may leave the 0..255 range (brightness, contrast); the device never sends such pixels.
            images = tf.clip_by_value(augmenter(images, training=True), 0.0, 255.0)
        # The same arithmetic as runtime.preprocess.normalize, so training and device inputs agree bit for bit.
        return (images - mean) / std, tf.one_hot(label_ids, num_classes)

    dataset = dataset.map(to_model_input, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not training)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _array_dataset(pixels: np.ndarray, labels: np.ndarray):
    """from_tensor_slices for arrays that fit in one graph constant (< 2 GB), a generator beyond that."""
    if pixels.nbytes < (1 << 30):
        return tf.data.Dataset.from_tensor_slices((pixels, labels))
    signature = (tf.TensorSpec(pixels.shape[1:], tf.uint8), tf.TensorSpec((), tf.int64))
    return tf.data.Dataset.from_generator(lambda: zip(pixels, labels), output_signature=signature)
