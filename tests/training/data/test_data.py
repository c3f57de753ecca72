"""Training's image-folder data: DATA arguments, class counts, image conversions, split, tf.data pipeline,
built-ins. The folder scanner itself is tested in tests/imagesets/."""


import cv2
import numpy as np
import pytest
from image_folders import make_folder, write_png

from edgecnn.errors import DataError
from edgecnn.imagesets import decode_items, scan_folder
from edgecnn.runtime.preprocess import InputSpec
from edgecnn.training.data import builtin as datasets
from edgecnn.training.data.folders import (
    check_class_counts,
    load_arrays,
    make_dataset,
    resolve_data,
    split_items,
    split_to_json,
)

SPEC = InputSpec(height=16, width=16)


# --- layout and bad input -------------------------------------------------------------------

def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"data folder .*nope does not exist; give a folder with one sub-folder "
                                        r"per class, or a built-in dataset: digits, shapes"):
        resolve_data(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        resolve_data(tmp_path / "a.txt")


def test_too_few_readable_images_in_a_class(tmp_path):
    make_folder(tmp_path, per_class=2)
    folder = scan_folder(tmp_path)
    with pytest.raises(DataError, match=r"class 'cat' has 2 readable image\(s\); edgecnn needs at least 5"):
        check_class_counts(folder.items, folder.labels)


# --- image conversions --------------------------------------------------------------------------

def test_gray_rgba_16bit_and_palette_images_become_rgb(tmp_path):
    from PIL import Image

    gray = write_png(tmp_path / "c" / "gray.png", np.full((16, 16), 200, np.uint8))
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0], rgba[..., 2], rgba[..., 3] = 10, 250, 0  # BGRA: blue, fully transparent
    rgba_path = write_png(tmp_path / "c" / "rgba.png", rgba)
    deep = write_png(tmp_path / "c" / "deep.png", np.full((16, 16, 3), 65535, np.uint16))
    palette = Image.new("P", (16, 16))
    palette.putpalette([0, 0, 0, 30, 60, 90] + [0] * (256 * 3 - 6))
    palette.paste(1, (0, 0, 16, 16))
    palette_path = tmp_path / "c" / "palette.png"
    palette.save(palette_path)
    assert Image.open(palette_path).mode == "P"

    items = [(gray, 0), (rgba_path, 0), (deep, 0), (palette_path, 0)]
    pixels, kept, skipped = decode_items(items, SPEC)
    assert not skipped and pixels.shape == (4, 16, 16, 3) and pixels.dtype == np.uint8
    assert (pixels[0] == 200).all()
    assert (pixels[1] == [250, 0, 10]).all()  # RGB, alpha dropped
    assert (pixels[2] == 255).all()
    assert (pixels[3] == [30, 60, 90]).all()

    gray_spec = InputSpec(height=8, width=8, channels=1, channel_order="GRAY", mean=(127.5,), std=(127.5,))
    gray_pixels, _, _ = decode_items(items[:1], gray_spec)
    assert gray_pixels.shape == (1, 8, 8, 1) and (gray_pixels == 200).all()


# --- split -----------------------------------------------------------------------------------------

def test_split_is_stratified_disjoint_and_reproducible(tmp_path):
    items = [(tmp_path / f"{c}{i}.png", c) for c in range(3) for i in range(40)]
    a = split_items(items, 3, val_fraction=0.2, test_fraction=0.25, seed=1)
    b = split_items(list(reversed(items)), 3, val_fraction=0.2, test_fraction=0.25, seed=1)
    c = split_items(items, 3, val_fraction=0.2, test_fraction=0.25, seed=2)
    assert a == b
    assert a["test"] != c["test"]
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (66, 24, 30)
    paths = [p for part in a.values() for p, _ in part]
    assert len(set(paths)) == len(items)
    for part in a.values():
        counts = np.bincount([label for _, label in part], minlength=3)
        assert counts.max() - counts.min() <= 1  # stratified: every class equally represented
    doc = split_to_json(tmp_path, a)
    assert doc["data_root"] == str(tmp_path) and doc["test"][0][0].endswith(".png") and "/" not in doc["test"][0][0]


def test_split_refuses_too_few_images(tmp_path):
    items = [(tmp_path / f"{c}{i}.png", c) for c in range(4) for i in range(2)]
    with pytest.raises(DataError, match="8 images in 4 classes are too few to split"):
        split_items(items, 4, val_fraction=0.15, test_fraction=0.15, seed=0)


# --- tf.data pipeline ---------------------------------------------------------------------------------

def test_pipeline_without_augmentation_equals_the_device_preprocessing(tmp_path):
    folder = scan_folder(make_folder(tmp_path, per_class=5, size=23))
    pixels, kept, _ = decode_items(folder.items, SPEC)
    labels = np.array([label for _, label in kept])
    dataset = make_dataset(pixels, labels, SPEC, num_classes=2, batch_size=4, training=False)
    x = np.concatenate([batch[0].numpy() for batch in dataset])
    y = np.concatenate([batch[1].numpy() for batch in dataset])
    expected_x, expected_y = load_arrays(kept, SPEC)  # runtime.preprocess.prepare_image, as on the device
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y.argmax(axis=1), expected_y)
    assert y.shape == (10, 2) and x.dtype == np.float32


def test_augmentation_only_in_training(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    labels = np.arange(8) % 2
    train = make_dataset(pixels, labels, SPEC, num_classes=2, batch_size=8, training=True, augment=True, seed=3)
    plain = make_dataset(pixels, labels, SPEC, num_classes=2, batch_size=8, training=False)
    x_train, y_train = next(iter(train))
    x_plain, _ = next(iter(plain))
    assert float(np.abs(x_train.numpy()).max()) <= 1.0
    # Shuffled and augmented: no training image equals any original image.
    originals = {x.tobytes() for x in x_plain.numpy()}
    assert not any(x.tobytes() in originals for x in x_train.numpy())
    assert sorted(y_train.numpy().argmax(axis=1)) == sorted(labels)
    again, _ = next(iter(plain))
    np.testing.assert_array_equal(x_plain.numpy(), again.numpy())


# --- built-in datasets -----------------------------------------------------------------------------------

def test_digits_builtin(edgecnn_cache):
    root, name = resolve_data("digits")
    assert name == "digits" and root.is_relative_to(edgecnn_cache)
    folder = scan_folder(root)
    assert folder.labels == [str(d) for d in range(10)]
    assert len(folder.items) == 1797
    from sklearn.datasets import load_digits

    first = load_digits().images[0]
    image = cv2.imread(str(root / "0" / "0000.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(image, np.rint(first * 255 / 16))  # white strokes (high values) on black
    assert resolve_data("digits")[0] == root  # written once
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_shapes_are_deterministic_per_seed(tmp_path):
    a = datasets.write_shapes(tmp_path / "a", size=24, per_class=3, seed=5)
    b = datasets.write_shapes(tmp_path / "b", size=24, per_class=3, seed=5)
    c = datasets.write_shapes(tmp_path / "c", size=24, per_class=3, seed=6)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 15 and {f.parts[0] for f in files} == set(datasets.SHAPE_CLASSES)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert any((a / f).read_bytes() != (c / f).read_bytes() for f in files)
    assert cv2.imread(str(a / files[0])).shape == (24, 24, 3)
