"""Small trained runs for the prune / QAT / export tests, made in seconds from sklearn's digits.

``make_run`` writes what ``edgecnn train`` writes (recipe.yaml, labels.txt, split.json,
float.keras) for a tiny registered architecture, trained for a few steps. It exists so these
tests do not depend on the training command's options; the run layout is the shared contract.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DIGIT_CLASSES = 4


def write_digit_folder(root: Path, *, classes: int = DIGIT_CLASSES, per_class: int = 30, scale: int = 2) -> Path:
    """An image folder root/<digit>/<n>.png of real handwritten digits (8x8, upscaled)."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    root.mkdir(parents=True, exist_ok=True)
    for label in range(classes):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        images = digits.images[digits.target == label][:per_class]
        for i, image in enumerate(images):
            pixels = np.clip(image * 16, 0, 255).astype(np.uint8)
            pixels = cv2.resize(pixels, (8 * scale, 8 * scale), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(folder / f"{i}.png"), pixels)
    return root


def make_run(run: Path, data: Path, *, architecture: str = "mobilenet_v1_tiny", size: int = 16,
             alpha: float = 0.25, epochs: int = 2, seed: int = 0) -> Path:
    """A run directory trained for a few steps on ``data`` (an image folder of class subfolders)."""
    import yaml

    from edgecnn.recipe import default_recipe
    from edgecnn.runtime.preprocess import InputSpec, model_pixels_from_rgb, normalize, read_image
    from edgecnn.training.architectures import build_model
    from edgecnn.training.keras_compat import keras, tf
    from edgecnn.training.model_io import save_keras_model

    labels = sorted(p.name for p in data.iterdir() if p.is_dir())
    items = [(str(p.relative_to(data)), i) for i, name in enumerate(labels) for p in sorted((data / name).iterdir())]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(items))
    n_test = max(len(labels), len(items) // 5)
    split = {"data_root": str(data), "train": [items[i] for i in order[2 * n_test:]],
             "val": [items[i] for i in order[n_test:2 * n_test]], "test": [items[i] for i in order[:n_test]]}
    recipe = default_recipe()
    recipe["name"] = f"test_{architecture}"
    recipe["model"].update(architecture=architecture, size=size, alpha=alpha, channels=3)
    recipe["train"].update(epochs=epochs, batch_size=16)
    recipe["prune"].update(epochs=1)
    recipe["qat"].update(epochs=1)
    run.mkdir(parents=True, exist_ok=True)
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (run / "labels.txt").write_text("\n".join(labels) + "\n")
    (run / "split.json").write_text(json.dumps(split))

    spec = InputSpec(height=size, width=size)
    x = np.stack([normalize(model_pixels_from_rgb(read_image(data / rel), spec), spec) for rel, _ in split["train"]])
    y = np.array([label for _, label in split["train"]])
    tf.random.set_seed(seed)
    model = build_model(architecture, num_classes=len(labels), size=size, alpha=alpha)
    model.compile(keras.optimizers.Adam(0.005), "sparse_categorical_crossentropy")
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0)
    save_keras_model(model, run / "float.keras")
    return run
