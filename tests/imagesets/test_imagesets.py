"""The one image-set path (edgecnn.imagesets): the folder scanner, strict and lenient, and decoded image sets."""

from pathlib import Path

import numpy as np
import pytest
from image_folders import make_folder, write_png

from edgecnn.errors import DataError, RunDirError
from edgecnn.imagesets import ImageSet, decode_items, image_files, load_images, load_split, scan_folder, warn_skipped
from edgecnn.runtime.preprocess import InputSpec, prepare_image, read_image

SPEC = InputSpec(height=16, width=16)


# --- strict: training, evaluation, calibration -----------------------------------------------------

def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match=r"has no class folders \(it is empty\); put images into one sub-folder"):
        scan_folder(tmp_path)


def test_images_without_class_folders(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"has no class folders \(it holds 1 images but no sub-folders\)"):
        scan_folder(tmp_path)


def test_single_class(tmp_path):
    make_folder(tmp_path, classes=("cat",))
    with pytest.raises(DataError, match=r"has only one class folder \(cat\); a classifier needs at least 2"):
        scan_folder(tmp_path)


def test_class_folder_without_images(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "bird").mkdir()
    (tmp_path / "bird" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"class folder .*bird has no images"):
        scan_folder(tmp_path)


def test_non_image_files_and_hidden_folders_are_ignored(tmp_path):
    make_folder(tmp_path, per_class=3)
    (tmp_path / "cat" / "README.md").write_text("about cats")
    (tmp_path / "dog" / "Thumbs.db").write_bytes(b"\0\1")
    write_png(tmp_path / ".git" / "x.png", np.zeros((4, 4, 3), np.uint8))
    write_png(tmp_path / "dog" / "nested" / "deep.png", np.zeros((4, 4, 3), np.uint8))
    folder = scan_folder(tmp_path)
    assert folder.labels == ["cat", "dog"]
    assert folder.ignored == 2
    assert len(folder.items) == 7  # images in nested folders of a class belong to it
    assert all(path.suffix == ".png" for path, _ in folder.items)


def test_corrupt_images_are_skipped_with_a_counted_warning(tmp_path, capsys):
    make_folder(tmp_path, per_class=4)
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    (tmp_path / "dog" / "empty.png").write_bytes(b"")
    folder = scan_folder(tmp_path)
    pixels, kept, skipped = decode_items(folder.items, SPEC)
    assert len(folder.items) == 10 and len(kept) == 8 and pixels.shape == (8, 16, 16, 3)
    assert sorted(Path(p).name for p, _ in skipped) == ["broken.jpg", "empty.png"]
    warn_skipped(skipped)
    err = capsys.readouterr().err
    assert err.startswith("warning: skipped 2 unreadable image(s): ")
    assert "broken.jpg" in err and err.count("\n") == 1


# --- lenient: parity's data ------------------------------------------------------------------------

def test_lenient_passes_over_empty_class_folders_and_accepts_one_class(tmp_path):
    make_folder(tmp_path, classes=("cat",), per_class=2)
    (tmp_path / "bird").mkdir()
    folder = scan_folder(tmp_path, lenient=True)
    assert folder.labelled and folder.labels == ["cat"]
    assert [(p.name, label) for p, label in folder.items] == [("0.png", 0), ("1.png", 0)]
    with pytest.raises(DataError, match=r"class folder .*bird has no images"):
        scan_folder(tmp_path)  # strict refuses the same folder


def test_lenient_reads_a_flat_folder_as_unlabelled(tmp_path):
    for name in ("b.png", "a.png"):
        write_png(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "empty_class").mkdir()
    folder = scan_folder(tmp_path, lenient=True)
    assert not folder.labelled and folder.labels == []
    assert [(p.name, label) for p, label in folder.items] == [("a.png", None), ("b.png", None)]


def test_lenient_without_images_says_where_to_put_them(tmp_path):
    (tmp_path / "cats").mkdir()
    with pytest.raises(DataError, match=r"no images found in .*; put images in one subfolder per class"):
        scan_folder(tmp_path, lenient=True)


def test_hidden_files_are_skipped_unless_asked(tmp_path):
    write_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    write_png(tmp_path / ".hidden" / "b.png", np.zeros((4, 4, 3), np.uint8))
    assert [p.name for p in image_files(tmp_path)[0]] == ["a.png"]
    assert sorted(p.name for p in image_files(tmp_path, skip_hidden=False)[0]) == ["a.png", "b.png"]


# --- decoded image sets ------------------------------------------------------------------------------

def test_load_images_decodes_once_and_normalizes_like_the_device(tmp_path):
    folder = scan_folder(make_folder(tmp_path, per_class=3, size=23))
    images = load_images(folder.items, SPEC)
    assert isinstance(images, ImageSet) and len(images) == 6 and images.pixels.dtype == np.uint8
    assert images.labels.tolist() == [0, 0, 0, 1, 1, 1]
    expected = np.stack([prepare_image(read_image(p), SPEC) for p, _ in folder.items])
    np.testing.assert_allclose(images.inputs(), expected, atol=1e-6)


def test_load_images_limit_keeps_a_seeded_subset_in_order(tmp_path):
    folder = scan_folder(make_folder(tmp_path, per_class=5))
    first = load_images(folder.items, SPEC, limit=4)
    again = load_images(folder.items, SPEC, limit=4)
    assert len(first) == 4 and np.array_equal(first.pixels, again.pixels)


def test_load_images_refuses_nothing_to_load():
    with pytest.raises(DataError, match="no calibration images to load"):
        load_images([], SPEC, what="calibration images")


class _EmptyRun:
    path = Path("RUN")

    def split_items(self, split):
        return []


def test_load_split_names_the_empty_split():
    with pytest.raises(RunDirError, match=r"RUN/split.json has no images in its val split"):
        load_split(_EmptyRun(), "val", SPEC)
