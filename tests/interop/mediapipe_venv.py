"""A venv of its own for MediaPipe Tasks: mediapipe pulls opencv-contrib-python, which would clash
with the training venv's opencv-python-headless (both install ``cv2``). Created on first use under
``~/.cache/edgecnn-mediapipe-venv`` (or $EDGECNN_MEDIAPIPE_VENV) with pip, then reused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

MEDIAPIPE = "mediapipe==1.2.*"


def venv_dir() -> Path:
    return Path(os.environ.get("EDGECNN_MEDIAPIPE_VENV", Path.home() / ".cache" / "edgecnn-mediapipe-venv"))


def mediapipe_python() -> Path:
    """The python of a venv where ``import mediapipe`` (1.2.x) works; created with pip if need be."""
    root = venv_dir()
    python = root / "bin" / "python"
    if _works(python):
        return python
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(tmp)], check=True)
    subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "-q", MEDIAPIPE], check=True)
    if root.exists():
        subprocess.run(["rm", "-rf", str(root)], check=True)
    tmp.rename(root)  # the venv's python is a symlink to the base interpreter: it survives the rename
    if not _works(python):
        raise RuntimeError(f"created {root} but 'import mediapipe' still fails there")
    return python


def _works(python: Path) -> bool:
    if not python.exists():
        return False
    probe = "import mediapipe, sys; sys.exit(0 if mediapipe.__version__.startswith('1.2.') else 1)"
    return subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0
