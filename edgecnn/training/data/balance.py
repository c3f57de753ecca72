"""Imbalanced class folders: weigh each class so that answering the largest one is not the easy way out.

A folder with 200 cats and 40 dogs trains a model that gains most by answering "cat". When the
largest class of the training split holds more than ``IMBALANCE_RATIO`` times the images of the
smallest, training weighs every image by scikit-learn's "balanced" class weight,
n_images / (n_classes x images_of_its_class), so each class contributes equally to the loss, and
says so. Below that ratio the weights would be close to 1 and are left out.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

IMBALANCE_RATIO = 1.5


def class_weights(train_labels, labels: list[str], log) -> dict[int, float] | None:
    """{class index: weight} for Keras' ``class_weight``, or None for a balanced enough split."""
    counts = np.bincount(np.asarray(train_labels, np.int64), minlength=len(labels))
    largest, smallest = int(counts.argmax()), int(counts.argmin())
    if counts[smallest] * IMBALANCE_RATIO >= counts[largest]:
        return None
    weights = compute_class_weight("balanced", classes=np.arange(len(labels)), y=np.asarray(train_labels))
    log(f"warning: the classes are imbalanced ({labels[largest]!r} has {counts[largest]} training images, "
        f"{labels[smallest]!r} {counts[smallest]}): training weighs each class by n / (classes x its count) "
        f"(weights {weights.min():.2f} to {weights.max():.2f}), so that answering {labels[largest]!r} does not pay; "
        "more images of the small classes would help more")
    return {i: float(w) for i, w in enumerate(weights)}
