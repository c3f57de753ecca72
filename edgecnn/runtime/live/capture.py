"""The capture thread: reads a source into a channel, reconnects live sources, loops files.

Capture runs in its own thread so that a camera is drained while the model works (OpenCV's
``read`` and most decoders release the GIL). For live sources the channel is a ``LatestSlot``
(newest frame wins); for files and folders a ``Fifo`` (in order, none dropped), unless
``realtime`` asks to pace the file at its own frame rate and drop like a camera.

A live source that stops delivering (unplugged camera, dropped stream) is released and
reopened with exponential backoff while the rest of the loop keeps running; each outage is
one gap. Every frame carries the number of gaps before it (``gaps_before``), so the loop can
restart smoothing after an outage even when the first frame after it was dropped.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time

import cv2
import numpy as np

from edgecnn.errors import EdgecnnError, SourceError
from edgecnn.runtime.live.outages import Outages
from edgecnn.runtime.live.sources import FrameSource


@dataclasses.dataclass
class Frame:
    index: int  # 0-based position in the source's stream of delivered frames
    image: np.ndarray  # BGR uint8
    captured_at: float  # time.perf_counter() when the source handed the frame over
    read_ms: float  # time spent in the source's read (decode, or waiting for the camera)
    gaps_before: int = 0  # outages of the source before this frame
    name: str | None = None  # file name, for image folders


@dataclasses.dataclass
class Backoff:
    initial_s: float = 0.1
    maximum_s: float = 5.0
    factor: float = 2.0

    def delays(self):
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum_s)


@dataclasses.dataclass
class CaptureStats:
    frames: int = 0
    gaps: int = 0
    gap_s: float = 0.0
    reconnect_attempts: int = 0
    read_errors: int = 0  # exceptions raised by a live source's read (each one retried by reconnecting)
    loops: int = 0
    ended: bool = False  # the source ended by itself (end of file)


class Capturer:
    """Reads a source frame by frame: reconnects a live source, loops a file, paces ``realtime``.

    ``next_frame()`` is all the loop needs; it runs in the capture thread when the loop
    pipelines, and in the loop's own thread when it runs inline (recorded sources only).
    """

    def __init__(self, source: FrameSource, stop: threading.Event, *, loop: bool = False, realtime: bool = False,
                 backoff: Backoff | None = None, warn=None):
        self.source, self.stop_event = source, stop
        self.loop = loop
        self.backoff = backoff or Backoff()
        self.warn = warn or _warn_stderr
        self.stats = CaptureStats()
        self.outages = Outages()
        self._failure = ""  # why the last read gave nothing, for the reconnect warning
        self._said_short = False
        self._pace = _Pacer(source.fps) if realtime and source.fps else None
        self._realtime = realtime

    def next_frame(self) -> Frame | None:
        """The next frame, or None when the source ended (or the run was stopped)."""
        if self._realtime and self._pace is None and self.source.fps:
            self._pace = _Pacer(self.source.fps)  # the frame rate is known once the source is open
        while not self.stop_event.is_set():
            if self._pace:
                self._pace.wait(self.stop_event)
            started = time.perf_counter()
            image = self._read()
            read_done = time.perf_counter()
            if image is None:
                if self.source.live:
                    self.outages.outage()
                    self._reconnect()
                    continue
                self._check_end()
                if self.loop and self.stats.frames > 0 and self.source.rewind():
                    self.stats.loops += 1
                    continue
                self.stats.ended = True
                return None
            frame = Frame(index=self.stats.frames, image=image, captured_at=read_done,
                          read_ms=(read_done - started) * 1e3, gaps_before=self.stats.gaps,
                          name=_current_name(self.source))
            self.stats.frames += 1
            self.outages.frame(read_done)
            self.stats.gap_s = self.outages.gap_s
            return frame
        return None

    def _read(self):
        try:
            image = self.source.read()
        except (cv2.error, OSError, RuntimeError) as exc:
            if not self.source.live:
                raise SourceError(f"reading {self.source.describe()} failed: {exc}") from None
            self.stats.read_errors += 1  # treated like a camera that stopped delivering: reopened
            self._failure = f"read failed: {str(exc).strip() or type(exc).__name__}"
            return None
        if image is None:
            self._failure = self.source.last_failure()
        return image

    def _check_end(self) -> None:
        """Warn (once) when a file ended before the frames its container announces."""
        message = self.source.ended_early()
        if message and not self._said_short:
            self._said_short = True
            self.warn(message)

    def report(self, now: float) -> dict:
        """The capture's counts for the run's summary (outages, reconnects, errors, the source's own)."""
        self.outages.end(now)
        return {**self.outages.summary(), "reconnect_attempts": self.stats.reconnect_attempts,
                "read_errors": self.stats.read_errors, **self.source.report()}

    def _reconnect(self) -> None:
        self.stats.gaps += 1
        outage_started = time.perf_counter()
        why = f" ({self._failure})" if self._failure else ""
        self.warn(f"{self.source.describe()} stopped delivering frames{why}; reconnecting")
        self.source.release()
        for delay in self.backoff.delays():
            if self.stop_event.wait(delay):
                break
            self.stats.reconnect_attempts += 1
            try:
                self.source.open()
            except SourceError as exc:
                self.warn(f"reconnect failed ({exc}); retrying in {min(delay * self.backoff.factor, self.backoff.maximum_s):.1f} s")
                continue
            self.warn(f"{self.source.describe()} reconnected after {time.perf_counter() - outage_started:.1f} s")
            break
        self._failure = ""


class CaptureThread(threading.Thread):
    """Runs a ``Capturer`` into a channel until the source ends or the run stops."""

    def __init__(self, source: FrameSource, channel, stop: threading.Event, *, loop: bool = False,
                 realtime: bool = False, backoff: Backoff | None = None, warn=None, capturer: Capturer | None = None,
                 retire: threading.Event | None = None):
        super().__init__(name="edgecnn-capture", daemon=True)
        self.source, self.channel, self.stop_event = source, channel, stop
        # Set when the loop goes back to inline: stop reading, keep the source open for the loop's own thread.
        self.retire = retire or threading.Event()
        self.capturer = capturer or Capturer(source, stop, loop=loop, realtime=realtime, backoff=backoff, warn=warn)
        self.error: EdgecnnError | None = None  # re-raised by the loop in the main thread

    @property
    def stats(self) -> CaptureStats:
        return self.capturer.stats

    def run(self) -> None:
        try:
            while not self.retire.is_set() and (frame := self.capturer.next_frame()) is not None:
                if not self.channel.put(frame):
                    return  # stopped while waiting for room
        except EdgecnnError as exc:
            self.error = exc
        finally:
            if not self.retire.is_set() or self.error is not None:
                self.source.release()
            self.channel.close()


class _Pacer:
    """Releases frame n at start + n / fps (a file played at its own speed)."""

    def __init__(self, fps: float):
        self.period = 1.0 / fps
        self.next_due = None

    def wait(self, stop: threading.Event) -> None:
        now = time.perf_counter()
        if self.next_due is None:
            self.next_due = now
        if self.next_due > now:
            stop.wait(self.next_due - now)
        # If we fell behind, do not try to catch up with a burst: a camera would not either.
        self.next_due = max(self.next_due + self.period, time.perf_counter())


def _current_name(source) -> str | None:
    path = getattr(source, "current_path", None)
    return str(path) if path is not None else None


def _warn_stderr(message: str) -> None:
    print(f"Warning: {message}", file=sys.stderr, flush=True)
