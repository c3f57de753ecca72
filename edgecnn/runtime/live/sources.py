"""Frame sources: cameras, V4L2 devices, video files, network streams, image folders, picamera2.

Every source delivers BGR uint8 frames (OpenCV's order) through the same small interface:
``open()`` (raises SourceError saying what was tried), ``read()`` (a frame, or None when the
file ended or a live source stopped delivering), ``rewind()`` (for ``--loop``), ``release()``.
``live`` sources (cameras, streams) are read with the newest-frame policy and reopened when
they drop out; recorded ones (files, folders) are read in order and end.

``parse_source`` turns the ``--source`` string into one of them. ``picamera2`` is imported
only when asked for. ``SyntheticSource`` is for tests and benchmarks: no hardware needed, and
it can be told to stop delivering after N frames to exercise reconnection.
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from edgecnn.errors import DataError, RuntimeUnavailable, SourceError
from edgecnn.runtime.live import streams
from edgecnn.runtime.live.video_files import missing_index_message, short_file_message
from edgecnn.runtime.preprocess import IMAGE_EXTENSIONS, image_files, read_image

VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                              ".ts", ".mjpeg", ".mjpg", ".h264", ".264", ".gif"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
SOURCE_FORMS = ("a camera index (0), a V4L2 device (/dev/video0), a video file, an image or folder of images, "
                "an rtsp:// or http:// URL, or picamera2")


class FrameSource:
    """Base of all sources. Subclasses set ``name`` and ``live`` and implement open/read/release."""

    name = "source"
    live = False
    fps: float | None = None  # native frame rate where the source knows it (used by --realtime, --record)

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def rewind(self) -> bool:
        """Start again from the first frame (for --loop); False if this source cannot."""
        self.release()
        self.open()
        return True

    def release(self) -> None:
        pass

    def describe(self) -> str:
        return self.name

    def last_failure(self) -> str:
        """Why the last read gave no frame, where the source knows ("" otherwise)."""
        return ""

    def ended_early(self) -> str | None:
        """Why the source ended before it should have (a truncated file), or None."""
        return None

    def report(self) -> dict:
        """Counts for the run's summary (corrupt frames, a short file ...)."""
        return {}


class OpenCVSource(FrameSource):
    """A source read with cv2.VideoCapture: camera index, device path, file or URL."""

    def __init__(self, target, kind: str, *, timeout_s: float = streams.DEFAULT_TIMEOUT_S, warn=None):
        if kind not in ("camera", "device", "file", "stream"):
            raise ValueError(f"unknown capture kind {kind}")
        self.target, self.kind = target, kind
        self.live = kind != "file"
        self.name = {"camera": f"camera {target}", "device": str(target), "file": str(target),
                     "stream": _redact_url(str(target))}[kind]
        self.timeout_s = timeout_s  # streams only: open and read limits (--source-timeout)
        self.counters = streams.StreamCounters()
        self._warn = warn or _warn_stderr
        self._capture = None
        self.frames_read = 0  # since the last open (files: compared with the count the container announces)
        self.announced: int | None = None

    def _backends(self) -> list[tuple[str, int]]:
        if self.kind in ("camera", "device"):
            if sys.platform.startswith("linux"):
                return [("V4L2", cv2.CAP_V4L2), ("any backend", cv2.CAP_ANY)]
            return [("any backend", cv2.CAP_ANY)]
        if self.kind == "stream":
            return [("FFMPEG", cv2.CAP_FFMPEG), ("any backend", cv2.CAP_ANY)]
        return [("any backend", cv2.CAP_ANY)]

    def open(self) -> None:
        self.frames_read = 0
        self.counters.last_failure, self.counters.last_frame_at = "", None
        if self.kind == "stream":
            self._capture = streams.open_stream(self.target, self.name, self.timeout_s)
            self._remember_fps(self._capture)
            return
        tried = []
        for backend_name, backend in self._backends():
            capture = cv2.VideoCapture(self.target, backend)
            if capture.isOpened():
                if self.live:
                    # Ask the driver to keep at most one buffered frame: less staleness on V4L2.
                    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
                self._remember_fps(capture)
                count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
                self.announced = int(count) if self.kind == "file" and count and count > 0 else None
                self._capture = capture
                return
            capture.release()
            tried.append(backend_name)
        if self.kind == "file" and (cut := missing_index_message(self.target)):
            raise SourceError(cut)
        raise SourceError(f"cannot open {self.name} (tried {', '.join(tried)}); {self._open_hint()}")

    def _remember_fps(self, capture) -> None:
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else None

    def _open_hint(self) -> str:
        if self.kind in ("camera", "device"):
            devices = list_v4l2_devices()
            found = f"found: {', '.join(devices)}" if devices else "no /dev/video* device exists"
            return (f"check it is connected and not used by another program, and that your user is in the "
                    f"'video' group ({found})")
        if self.kind == "stream":
            return "check the URL, credentials and network, and that the stream is running"
        return "the container or codec may not be supported by this OpenCV build; try an MJPG .avi or mp4v .mp4"

    def read(self) -> np.ndarray | None:
        if self._capture is None:
            return None
        if self.kind == "stream":
            frame = streams.read_stream(self._capture, self.timeout_s, self.counters, self._warn)
        else:
            ok, frame = self._capture.read()
            frame = frame if ok else None
        self.frames_read += frame is not None
        return frame

    def release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def last_failure(self) -> str:
        return self.counters.last_failure

    def ended_early(self) -> str | None:
        if self.kind != "file":
            return None
        return short_file_message(self.name, self.frames_read, self.announced)

    def report(self) -> dict:
        if self.kind == "stream":
            return {"corrupt_frames": self.counters.corrupt_frames, "stalls": self.counters.stalls}
        if self.kind == "file" and self.announced is not None and self.frames_read < self.announced:
            return {"file_frames": {"read": self.frames_read, "announced": self.announced}}
        return {}


class ImageFolderSource(FrameSource):
    """Images from a folder (sorted, recursive) or a list of files, as BGR frames, in order.

    An image that cannot be decoded is skipped with a warning, like ``classify`` does.
    """

    live = False

    def __init__(self, paths, name: str, warn=None):
        self.paths = list(paths)
        self.name = name
        self._warn = warn or _warn_stderr
        self._next = 0
        self.current_path: Path | None = None
        self.skipped = 0

    @classmethod
    def from_folder(cls, folder, warn=None) -> "ImageFolderSource":
        folder = Path(folder)
        paths = find_images([folder])
        if not paths:
            raise SourceError(f"folder {folder} has no images ({', '.join(sorted(IMAGE_EXTENSIONS))}); "
                              "point --source at a folder of images")
        return cls(paths, str(folder), warn)

    def open(self) -> None:
        self._next = 0

    def rewind(self) -> bool:
        self._next = 0
        return True

    def read(self) -> np.ndarray | None:
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                rgb = read_image(path)
            except DataError as exc:
                self.skipped += 1
                self._warn(f"skipping {exc}")
                continue
            self.current_path = path
            return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        return None


class Picamera2Source(FrameSource):
    """The Raspberry Pi camera through picamera2 (libcamera). Imported only when asked for."""

    live = True
    name = "picamera2"

    def __init__(self, size=(640, 480)):
        self.size = tuple(size)
        self._camera = None

    def open(self) -> None:
        try:
            from picamera2 import Picamera2  # noqa: PLC0415 - only on a Pi, only when asked
        except ImportError:
            raise RuntimeUnavailable(
                "picamera2 is not installed; on Raspberry Pi OS run 'sudo apt install python3-picamera2' and "
                "create the virtual environment with --system-site-packages, or use --source 0 for a USB camera"
            ) from None
        try:
            camera = Picamera2()
            # libcamera's "RGB888" is laid out B, G, R in memory: exactly OpenCV's BGR.
            camera.configure(camera.create_video_configuration(main={"format": "RGB888", "size": self.size}))
            camera.start()
        except (RuntimeError, IndexError, OSError) as exc:
            raise SourceError(f"cannot open picamera2 ({exc}); check the ribbon cable and that no other "
                              "program (rpicam-hello, another edgecnn) holds the camera") from None
        self._camera = camera

    def read(self) -> np.ndarray | None:
        if self._camera is None:
            return None
        try:
            return self._camera.capture_array("main")
        except (RuntimeError, OSError):
            return None  # a camera that stopped: the capture thread reopens it

    def release(self) -> None:
        if self._camera is not None:
            try:
                self._camera.stop()
                self._camera.close()
            finally:
                self._camera = None


class SyntheticSource(FrameSource):
    """Synthetic frames for tests and benchmarks, no hardware needed.

    Frame ``i`` is a solid colour cycling red, green, blue every ``period`` frames, so a test
    model's answers are known. ``fail_after=N`` makes it stop delivering after N frames (as an
    unplugged camera does) until reopened; ``failures`` says how many such outages happen and
    ``reopen_failures`` how many reopen attempts fail first, to exercise the backoff.
    ``count`` ends a non-live source after that many frames; ``fps`` paces delivery like a camera.
    """

    COLOURS_BGR = ((0, 0, 230), (0, 230, 0), (230, 0, 0))  # red, green, blue

    def __init__(self, *, size=(48, 64), live=True, count=None, fail_after=None, failures=1, reopen_failures=0,
                 fps=None, period=10):
        self.size, self.live, self.count = tuple(size), live, count
        self.fail_after, self.failures_left, self.reopen_failures = fail_after, failures, reopen_failures
        self.fps, self.period = fps, period
        self.name = "synthetic"
        self.delivered = 0  # frames delivered in total
        self.opens = 0  # successful opens
        self.refused_opens = 0
        self.is_open = False
        self._since_open = 0
        self._refusals_left = 0
        self._next_due = None
        self._frames = [np.full((*self.size, 3), c, np.uint8) for c in self.COLOURS_BGR]

    def colour_index(self, i: int) -> int:
        """Which of COLOURS_BGR frame ``i`` shows."""
        return (i // self.period) % 3

    def open(self) -> None:
        if self._refusals_left > 0:
            self._refusals_left -= 1
            self.refused_opens += 1
            raise SourceError("synthetic source refused to reopen (test)")
        self.opens += 1
        self.is_open = True
        self._since_open = 0
        self._next_due = None

    def read(self) -> np.ndarray | None:
        if not self.is_open:
            return None
        if self.count is not None and self.delivered >= self.count:
            return None
        if self.fail_after is not None and self.failures_left > 0 and self._since_open >= self.fail_after:
            # An outage: nothing more until the capture thread releases and reopens us.
            self.failures_left -= 1
            self._refusals_left = self.reopen_failures
            self.is_open = False
            return None
        self._pace()
        frame = self._frames[self.colour_index(self.delivered)].copy()
        self.delivered += 1
        self._since_open += 1
        return frame

    def _pace(self) -> None:
        if not self.fps:
            return
        now = time.perf_counter()
        if self._next_due is None:
            self._next_due = now
        if self._next_due > now:
            time.sleep(self._next_due - now)
        self._next_due = max(self._next_due, now - 1.0 / self.fps) + 1.0 / self.fps

    def rewind(self) -> bool:
        self.delivered = 0
        return True

    def release(self) -> None:
        self.is_open = False


def parse_source(text: str, *, warn=None, picamera_size=(640, 480),
                 timeout_s: float = streams.DEFAULT_TIMEOUT_S) -> FrameSource:
    """The source a ``--source`` string names, or SourceError listing the accepted forms.

    ``timeout_s`` bounds a network stream's open and each read (``--source-timeout``)."""
    text = str(text).strip()
    if text == "picamera2":
        return Picamera2Source(picamera_size)
    if re.fullmatch(r"\d+", text):
        return OpenCVSource(int(text), "camera")
    if text.lower().startswith(STREAM_SCHEMES):
        return OpenCVSource(text, "stream", timeout_s=timeout_s, warn=warn)
    if text.startswith("/dev/"):
        if not os.path.exists(text):
            devices = list_v4l2_devices()
            found = f"devices here: {', '.join(devices)}" if devices else "no /dev/video* device exists here"
            raise SourceError(f"camera device {text} does not exist ({found})")
        return OpenCVSource(text, "device")
    path = Path(text).expanduser()
    if path.is_dir():
        return ImageFolderSource.from_folder(path, warn)
    if path.is_file():
        if path.suffix.lower() in IMAGE_EXTENSIONS and path.suffix.lower() not in (".gif",):
            return ImageFolderSource([path], str(path), warn)
        return OpenCVSource(str(path), "file")
    if path.suffix.lower() in VIDEO_EXTENSIONS | IMAGE_EXTENSIONS:
        raise SourceError(f"source file {text} does not exist; check the path")
    raise SourceError(f"unknown source {text!r}; give {SOURCE_FORMS}")


def find_images(paths) -> list[Path]:
    """Image files among ``paths`` (files kept as given, folders searched recursively, sorted)."""
    found = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found.extend(image_files(path, skip_hidden=False)[0])  # the one scanner, hidden files kept as before
        else:
            found.append(path)
    return found


def list_v4l2_devices() -> list[str]:
    return sorted(glob.glob("/dev/video*"), key=lambda p: (len(p), p))


def _redact_url(url: str) -> str:
    # rtsp://user:password@host/... : keep passwords out of logs and JSON output.
    return re.sub(r"//([^/@:]+):[^/@]*@", r"//\1:***@", url)


def _warn_stderr(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)
