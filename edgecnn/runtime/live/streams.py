"""Network streams (rtsp://, http:// MJPEG ...) through OpenCV's FFmpeg backend: timeouts and bad frames.

Timeouts: FFmpeg's network reads block until data comes, so OpenCV guards them with an interrupt
callback whose limits are the capture properties ``CAP_PROP_OPEN_TIMEOUT_MSEC`` and
``CAP_PROP_READ_TIMEOUT_MSEC`` (30 s each by default, so a server that accepts and then says
nothing cost a minute of silence). They only take effect when passed to the ``VideoCapture``
constructor, which is what ``open_stream`` does with ``--source-timeout``. A read that hit the
limit returns no frame after about that long (measured: 1.003 s for a 1 s limit), and is reported
as a stall; the loop then reconnects.

Bad frames: a truncated or corrupt JPEG inside an MJPEG stream makes ``read()`` fail once, and the
next read delivers the next frame (the connection is fine). A dead connection fails every read at
once. So a failed read is retried up to ``MAX_BAD_IN_A_ROW`` times: a retry that succeeds means the
frames before it were bad (skipped and counted); if every retry fails too, the stream ended.
"""

from __future__ import annotations

import dataclasses
import time

import cv2

from edgecnn.errors import SourceError

DEFAULT_TIMEOUT_S = 5.0
MAX_BAD_IN_A_ROW = 3
STALL_FRACTION = 0.9  # a failed read that took this share of the limit was the timeout firing


@dataclasses.dataclass
class StreamCounters:
    corrupt_frames: int = 0  # frames the decoder refused (skipped)
    stalls: int = 0  # reads that ran into the timeout
    last_failure: str = ""  # why the last read gave no frame, for the reconnect warning
    last_frame_at: float | None = None  # time.perf_counter() of the last good frame


def ffmpeg_params(timeout_s: float) -> list[int]:
    ms = max(1, int(round(timeout_s * 1000)))
    return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]


def open_stream(url: str, name: str, timeout_s: float) -> cv2.VideoCapture:
    """A capture of ``url`` whose open and reads give up after ``timeout_s``, or SourceError.

    Only the FFmpeg backend is tried where OpenCV has it: ``CAP_ANY`` would try FFmpeg again and
    double the wait on a server that does not answer."""
    backend = cv2.CAP_FFMPEG if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG) else cv2.CAP_ANY
    started = time.perf_counter()
    capture = cv2.VideoCapture(url, backend, ffmpeg_params(timeout_s))
    if capture.isOpened():
        return capture
    capture.release()
    took = time.perf_counter() - started
    if took >= STALL_FRACTION * timeout_s:
        raise SourceError(f"{name} did not answer within {timeout_s:g} s (--source-timeout); check that the "
                          "stream is running and reachable, or give it longer with --source-timeout")
    tried = "FFMPEG" if backend == cv2.CAP_FFMPEG else "any backend"
    raise SourceError(f"cannot open {name} (tried {tried}); check the URL, credentials and network, "
                      "and that the stream is running")


def read_stream(capture: cv2.VideoCapture, timeout_s: float, counters: StreamCounters, warn):
    """The next good frame, or None when the stream stalled or ended (``counters.last_failure`` says which)."""
    bad, started = 0, time.perf_counter()
    while True:
        ok, frame = capture.read()
        now = time.perf_counter()
        if ok:
            if bad:
                counters.corrupt_frames += bad
                _warn_corrupt(counters.corrupt_frames, bad, warn)
            counters.last_frame_at = now
            return frame
        bad += 1
        # A stall is silence since the last good frame, not the length of this one read: reads that fail
        # fast after a long silence (bad frames, then nothing) are still that stall.
        silent = now - (counters.last_frame_at if counters.last_frame_at is not None else started)
        if silent >= STALL_FRACTION * timeout_s:
            counters.stalls += 1
            counters.last_failure = f"no frame for {timeout_s:g} s, the --source-timeout"
            return None
        if bad > MAX_BAD_IN_A_ROW:
            counters.last_failure = "the stream ended"
            return None


def _warn_corrupt(total: int, now: int, warn) -> None:
    # The first one, then every hundredth: a camera that sends many bad frames should not flood the log.
    if total == now or total // 100 != (total - now) // 100:
        warn(f"skipped {now} corrupt or truncated frame(s) from the stream ({total} so far; counted in the "
             "summary as corrupt_frames)")
