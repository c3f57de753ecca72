"""Atomic writes: a failure leaves neither the target nor a temporary file behind."""

import pytest

from edgecnn.atomic import atomic_path, write_json, write_text
from edgecnn.errors import EdgecnnError


def test_write_replaces_whole_file(tmp_path):
    target = tmp_path / "a.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failure_inside_block_leaves_nothing(tmp_path):
    target = tmp_path / "model.keras"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_the_previous_version(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"ok": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{broken")
            raise RuntimeError
    assert target.read_text().strip() == '{\n  "ok": 1\n}'


def test_temporary_name_keeps_the_suffix(tmp_path):
    with atomic_path(tmp_path / "clip.avi") as tmp:
        assert tmp.suffix == ".avi"
        tmp.write_bytes(b"x")


def test_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(EdgecnnError, match=r"folder .*missing does not exist; create it"):
        write_text(tmp_path / "missing" / "a.txt", "x")
