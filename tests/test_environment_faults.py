"""Environment faults on real file systems: a full disk, a read-only mount, a folder we may not write or read.

The disks are real: a size-limited tmpfs mounted by the test (needs root and mount rights, as CI has;
elsewhere the test skips and says why). Permission cases run with the effective uid dropped to
``nobody``, because root may write anywhere and would never see the error a user sees.
"""

import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.atomic import write_bytes
from edgecnn.cli import cli
from edgecnn.errors import DataError, WriteFailed
from edgecnn.imagesets.folders import scan_folder
from tests.fault_disks import as_nobody, fill, mounted_tmpfs
from tests.tflite_models import write_model


def test_full_disk_gives_one_line_and_leaves_no_partial_file():
    with mounted_tmpfs("size=256k") as disk:
        target = disk / "model.tflite"
        with pytest.raises(WriteFailed) as caught:
            write_bytes(target, b"\1" * (1 << 20))  # 1 MiB onto 256 KiB
        assert str(caught.value).startswith(f"cannot write {target}: No space left on device; free some space")
        assert sorted(p.name for p in disk.iterdir()) == []  # no target, no temporary file


def test_full_disk_in_a_command_is_one_line_and_exit_1(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    with mounted_tmpfs("size=128k") as disk:
        fill(disk)
        report = disk / "report.json"
        result = CliRunner().invoke(cli, ["profile", str(model), "--runs", "3", "--warmup", "1", "--out", str(report)])
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith(f"Error: cannot write {report}: No space left on device"), result.output
        assert "Traceback" not in result.output
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_read_only_mount_is_named_as_such(tmp_path):
    model = write_model(tmp_path / "m.tflite")
    with mounted_tmpfs("ro,size=64k") as disk:
        report = disk / "report.json"
        result = CliRunner().invoke(cli, ["profile", str(model), "--runs", "3", "--warmup", "1", "--out", str(report)])
        assert result.exit_code == 1, result.output
        assert result.output.strip().splitlines()[-1] == (
            f"Error: cannot write {report}: Read-only file system; the file system is read-only: choose a writable --out")


def test_folder_we_may_not_write_is_permission_denied():
    folder = Path(tempfile.mkdtemp(prefix="edgecnn-locked-"))
    try:
        folder.chmod(0o555)
        with as_nobody(), pytest.raises(WriteFailed) as caught:
            write_bytes(folder / "a.json", b"{}")
        assert "Permission denied; choose a folder you can write to" in str(caught.value)
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)
        folder.rmdir()


def _image(path: Path, value: int) -> None:
    cv2.imwrite(str(path), np.full((8, 8, 3), value, np.uint8))


def test_unreadable_class_folder_says_permission_denied_not_empty():
    root = Path(tempfile.mkdtemp(prefix="edgecnn-data-"))
    try:
        root.chmod(0o755)
        for name, value in (("cat", 10), ("dog", 200)):
            (root / name).mkdir()
            for i in range(3):
                _image(root / name / f"{i}.png", value + i)
        (root / "dog").chmod(0)
        with as_nobody(), pytest.raises(DataError) as caught:
            scan_folder(root)
        assert str(caught.value).startswith(f"cannot read {root / 'dog'}: permission denied; make it readable")
        # With the permission back the same folder scans: it was the permission, not the images.
        (root / "dog").chmod(0o755)
        with as_nobody():
            assert scan_folder(root).labels == ["cat", "dog"]
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)


def test_recording_onto_a_full_disk_stops_with_an_error_not_exit_0(tmp_path):
    # Noise frames do not compress: 60 MJPG frames of 240x240 are several MiB against a 1 MiB disk.
    clip = tmp_path / "noise.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (240, 240))
    noise = np.random.default_rng(0).integers(0, 256, (60, 240, 240, 3), dtype=np.uint8)
    for frame in noise:
        writer.write(frame)
    writer.release()
    model = write_model(tmp_path / "m.tflite", kind="int8")
    with mounted_tmpfs("size=1m") as disk:
        target = disk / "out.avi"
        result = CliRunner().invoke(cli, ["run", str(model), "--source", str(clip), "--headless", "--record", str(target)])
        assert result.exit_code == 1, result.output
        last = result.output.strip().splitlines()[-1]
        assert last.startswith(f"Error: cannot record to {target}: the disk is full after "), result.output
        assert "Traceback" not in result.output
        assert list(disk.iterdir()) == []  # the partial recording was removed, as the message says
