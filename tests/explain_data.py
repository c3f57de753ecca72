"""A task whose right explanation is known: a coloured square at a random place on a plain grey background.

The class is the square's colour (red, green, blue), so all the class evidence lies inside the square's
box and none outside. ``write_evidence_folder`` writes class folders of PNGs and returns each file's box;
``train_evidence_model`` trains a small edgecnn MobileNetV1 (the registered ``mobilenet_v1_tiny`` design,
with two stride-2 stages instead of the size rule's four, so the last feature map is 8x8 at 32 px rather
than 2x2: fine enough to localize an 8-pixel square) with plain Keras ``fit`` for a few epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# In folder-name order, so that class indices match those of an image folder (sorted names).
COLOURS = {"blue": (30, 30, 230), "green": (30, 200, 30), "red": (230, 30, 30)}
SIZE = 32
SQUARE = 8
BACKGROUND = 128


def evidence_image(rng, colour) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(RGB uint8 image, box (top, left, bottom, right)) with the square at a random place."""
    image = np.full((SIZE, SIZE, 3), BACKGROUND, np.uint8)
    top, left = (int(v) for v in rng.integers(0, SIZE - SQUARE + 1, size=2))
    image[top:top + SQUARE, left:left + SQUARE] = colour
    return image, (top, left, top + SQUARE, left + SQUARE)


def write_evidence_folder(root: Path, *, per_class: int = 60, seed: int = 0) -> dict[str, tuple]:
    """root/<colour>/<n>.png; returns {relative path: box} (also written to root/../boxes.json)."""
    import cv2

    rng = np.random.default_rng(seed)
    boxes = {}
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image, box = evidence_image(rng, colour)
            cv2.imwrite(str(root / name / f"{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            boxes[f"{name}/{i}.png"] = box
    (root.parent / "boxes.json").write_text(json.dumps(boxes))
    return boxes


def evidence_arrays(count: int, seed: int):
    """(images N x 32 x 32 x 3 uint8, labels N, boxes N x 4), classes in turn."""
    rng = np.random.default_rng(seed)
    images, labels, boxes = [], [], []
    for i in range(count):
        label = i % len(COLOURS)
        image, box = evidence_image(rng, list(COLOURS.values())[label])
        images.append(image), labels.append(label), boxes.append(box)
    return np.stack(images), np.array(labels), np.array(boxes)


def train_evidence_model(path: Path, *, seed: int = 0, epochs: int = 6):
    """Train and save (as .keras) the small model on 300 generated images; returns the model."""
    from edgecnn.training.keras_compat import keras, tf
    from edgecnn.training.models.model_io import save_keras_model
    from edgecnn.training.models.registry import get_spec

    keras.utils.set_random_seed(seed)
    spec = get_spec("mobilenet_v1_tiny")
    model = spec.builder(spec, num_classes=len(COLOURS), size=SIZE, channels=3, alpha=0.25, depth=0.5,
                         dropout=0.0, bn_momentum=0.9, strides=2, **spec.extra)
    images, labels, _ = evidence_arrays(300, seed)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit((images.astype(np.float32) - 127.5) / 127.5, labels, epochs=epochs, batch_size=32, verbose=0)
    del tf
    save_keras_model(model, path)
    return model
