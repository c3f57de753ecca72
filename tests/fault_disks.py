"""Real faulty disks for tests: a size-limited or read-only tmpfs, a dropped uid.

A tmpfs needs root and mount rights (CI has both); elsewhere the test skips and says why.
"""

import contextlib
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

NOBODY = 65534


@contextlib.contextmanager
def mounted_tmpfs(options: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a size-limited tmpfs needs root")
    where = Path(tempfile.mkdtemp(prefix="edgecnn-fault-"))
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
        where.rmdir()


@contextlib.contextmanager
def as_nobody():
    """Drop the effective uid for the block (root only); a non-root user is already bound by permissions."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)


def fill(folder: Path) -> None:
    """Leave a tmpfs with no free block."""
    with open(folder / "filler", "wb") as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 65536)
            f.flush()
