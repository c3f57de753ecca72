"""Atomic file writes: a crash never leaves a truncated artifact that a later stage trusts.

Everything edgecnn writes into a run directory or an --out path goes through here:
write to a temporary file in the same folder, then rename over the target.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from edgecnn import interrupts
from edgecnn.errors import EdgecnnError, environment_write_error


def _check_parent(path: Path) -> None:
    if not path.parent.is_dir():
        raise EdgecnnError(f"cannot write {path}: folder {path.parent} does not exist; create it or choose another path")


@contextlib.contextmanager
def atomic_path(target, suffix: str | None = None):
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds.

    For writers that insist on a file name (Keras' ``model.save``, OpenCV's VideoWriter).
    The temporary name keeps the target's suffix, because such writers pick the format by suffix.
    """
    target = Path(target)
    _check_parent(target)
    suffix = target.suffix if suffix is None else suffix
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{suffix}", dir=target.parent)
    except OSError as exc:
        raise (environment_write_error(exc, target) or exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # writers such as Keras refuse to overwrite or expect to create the file themselves
    try:
        yield tmp
        if not tmp.exists():
            raise EdgecnnError(f"internal: nothing was written for {target}")
        interrupts.check()  # a Ctrl-C that a library swallowed mid-write publishes nothing
        os.replace(tmp, target)
    except OSError as exc:
        # A full or read-only disk mid-write: one line naming the artifact; the finally removes the partial file.
        raise (environment_write_error(exc, target) or exc) from None
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_bytes(target, data: bytes) -> Path:
    target = Path(target)
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return target


def write_text(target, text: str) -> Path:
    return write_bytes(target, text.encode("utf-8"))


def write_json(target, obj) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj):
    # numpy scalars and arrays show up in reports; turn them into plain JSON without importing numpy here.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
