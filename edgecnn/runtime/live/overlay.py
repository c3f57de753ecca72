"""What a person sees: the overlay (label, score, FPS, inference ms), the window, the recording.

``WindowOutput`` shows annotated frames in an OpenCV window and stops the run on q or Esc.
``RecordOutput`` writes the annotated video through ``atomic_path``: the file appears only
when the run ends cleanly, never half-written. Both draw with ``draw_overlay``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from edgecnn.atomic import atomic_path
from edgecnn.errors import RuntimeUnavailable, SourceError, WriteFailed

QUIT_KEYS = (ord("q"), ord("Q"), 27)  # q, Q, Esc
FOURCC_BY_SUFFIX = {".avi": "MJPG", ".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".mkv": "XVID"}
_GREEN, _AMBER, _WHITE, _BLACK = (80, 220, 80), (0, 190, 255), (255, 255, 255), (0, 0, 0)


def draw_overlay(image: np.ndarray, result) -> np.ndarray:
    """Label, score, FPS and inference ms drawn onto ``image`` (in place; returned for chaining)."""
    p = result.prediction
    scale = max(0.4, min(image.shape[1], 1280) / 900)
    thickness = max(1, int(round(scale * 2)))
    line = int(28 * scale)
    label = f"{p.label} {p.score:.2f}" if p.label is not None else f"? ({p.top_k[0][0]} {p.score:.2f})"
    lines = [(label, _GREEN if p.label is not None else _AMBER)]
    lines += [(f"{name} {score:.2f}", _WHITE) for name, score in p.top_k[1:]]
    inference = result.stages_ms.get("inference", 0.0)
    lines.append((f"{result.fps:.1f} FPS  infer {inference:.1f} ms", _WHITE))
    for i, (text, colour) in enumerate(lines):
        origin = (8, line * (i + 1))
        # A dark outline keeps the text readable on any background.
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, _BLACK, thickness + 2, cv2.LINE_AA)
        cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return image


def annotated(result) -> np.ndarray:
    """The frame with its overlay, drawn once however many outputs (window, recording) want it.
    With ``run --explain`` the class activation map is blended in first, under the text."""
    if result.annotated is None:
        image = result.frame.image if result.cam is None else result.cam.blend_into(result.frame.image)
        result.annotated = draw_overlay(image, result)
    return result.annotated


def check_display() -> None:
    """RuntimeUnavailable (saying: use --headless) when no window can be shown here."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise RuntimeUnavailable("no display to show the window on (DISPLAY is not set); use --headless, "
                                 "with --json or --record to keep the results")
    if not opencv_has_gui():
        raise RuntimeUnavailable("this OpenCV has no window support (opencv-python-headless); use --headless, "
                                 "or pip install opencv-python for a window")


def opencv_has_gui() -> bool:
    info = cv2.getBuildInformation()
    start = info.find("GUI:")
    if start < 0:
        return True  # unknown layout: let namedWindow decide
    return not info[start:start + 80].split("\n")[0].rstrip().endswith("NONE")


class WindowOutput:
    def __init__(self, title: str = "edgecnn"):
        check_display()
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise RuntimeUnavailable("OpenCV could not open a window here; use --headless") from None

    def write(self, result) -> bool:
        cv2.imshow(self.title, annotated(result))
        key = cv2.waitKey(1) & 0xFF
        closed = cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        return key not in QUIT_KEYS and not closed

    def close(self, summary: dict) -> None:
        with contextlib.suppress(cv2.error):
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


class RecordOutput:
    """The annotated video, written to a temporary file and renamed into place at the end."""

    def __init__(self, path, fps=None):
        """``fps``: the recording's frame rate, or a function giving it once the source is open
        (a video file's own rate); 30 when unknown, as for most cameras."""
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in FOURCC_BY_SUFFIX:
            raise SourceError(f"cannot record to {self.path}: use one of {', '.join(FOURCC_BY_SUFFIX)}")
        self.fourcc = cv2.VideoWriter_fourcc(*FOURCC_BY_SUFFIX[suffix])
        self._fps = fps
        self.fps: float | None = None
        self._atomic = atomic_path(self.path)
        self._tmp = self._atomic.__enter__()  # checks the folder exists before the run starts
        self._writer = None
        self._size = None
        self._finished = False
        self._failed = False
        self.frames = 0

    def write(self, result) -> bool:
        image = annotated(result)
        if self._writer is None:
            self._size = (image.shape[1], image.shape[0])
            fps = self._fps() if callable(self._fps) else self._fps
            self.fps = float(fps) if fps and fps > 0 else 30.0
            self._writer = cv2.VideoWriter(str(self._tmp), self.fourcc, self.fps, self._size)
            if not self._writer.isOpened():
                raise SourceError(f"cannot record to {self.path}: OpenCV has no {FOURCC_BY_SUFFIX[self.path.suffix.lower()]} "
                                  "encoder here; try a .avi file (MJPG)")
        if (image.shape[1], image.shape[0]) != self._size:
            image = cv2.resize(image, self._size, interpolation=cv2.INTER_AREA)  # folders mix image sizes
        self._check_space(image.nbytes)
        self._writer.write(image)
        self.frames += 1
        return True

    def _check_space(self, frame_bytes: int) -> None:
        """Stop before the disk is full: OpenCV's writer only warns ("Failed to write frame") and
        goes on, so a full disk would otherwise end in exit 0 and a recording silently cut short.
        An uncompressed frame is more than any codec writes for it; two of them is the margin."""
        disk = os.statvfs(self._tmp.parent)
        free = disk.f_bavail * disk.f_frsize
        if free < 2 * frame_bytes:
            self._failed = True
            raise WriteFailed(f"cannot record to {self.path}: the disk is full after {self.frames} frames "
                              f"({free // 1024} KiB left); free some space or record elsewhere (the partial "
                              "recording was removed)")

    def close(self, summary: dict) -> None:
        if self._finished:
            return
        self._finished = True
        if self._writer is not None:
            self._writer.release()
        if self.frames == 0 or self._failed:
            # Nothing to keep (or a recording cut short by a full disk): leave no partial file behind.
            self._atomic.__exit__(RuntimeUnavailable, RuntimeUnavailable("no frames"), None)
            return
        self._atomic.__exit__(None, None, None)
        summary["recorded"] = str(self.path)
        summary["recorded_frames"] = self.frames  # what the file holds: a test opens it and counts

    def abort(self) -> None:
        """Drop the partial recording if the run never closed it (it failed before starting)."""
        if self._finished:
            return
        self._finished = True
        if self._writer is not None:
            self._writer.release()
        with contextlib.suppress(RuntimeUnavailable):
            self._atomic.__exit__(RuntimeUnavailable, RuntimeUnavailable("aborted"), None)
