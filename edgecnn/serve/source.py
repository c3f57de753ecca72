"""An optional live source beside the server: the ``edgecnn run`` loop in a background thread.

The loop (``runtime.live.loop.run_loop``) runs unchanged with one more output, ``MetricsOutput``,
that counts frames, keeps the loop's fps and the time of the last frame (for ``/readyz``) and
feeds the predicted class and confidence into ``/metrics`` with ``origin="source"``. The loop
gets its own classifier: an interpreter must not be shared between threads.
"""

from __future__ import annotations

import threading
import time

import cv2

from edgecnn.runtime.live.loop import LoopOptions, StopFlag, run_loop
from edgecnn.runtime.live.overlay import annotated
from edgecnn.runtime.live.sources import parse_source

# /readyz says "not ready" when the source has delivered no frame for this long.
STALE_AFTER_S = 5.0
JPEG_QUALITY = 80


class MetricsOutput:
    def __init__(self, metrics):
        self.metrics = metrics
        self.last_frame_at: float | None = None
        self.summary: dict | None = None
        # /v1/stream.mjpg: frames are encoded only while someone watches; every viewer reads the same
        # latest JPEG, so several viewers share one capture and one encode per frame.
        self.viewers = 0
        self.jpeg: bytes | None = None
        self.jpeg_version = 0

    def write(self, result) -> bool:
        self.metrics.frames.inc()
        self.metrics.fps.set(result.fps)
        for stage, ms in result.stages_ms.items():
            self.metrics.stages.labels(stage=stage).observe(ms / 1e3)
        prediction = result.prediction
        self.metrics.observe_prediction(prediction.label, prediction.score, "source")
        self.last_frame_at = time.monotonic()
        if self.viewers > 0:
            ok, data = cv2.imencode(".jpg", annotated(result), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            if ok:
                self.jpeg, self.jpeg_version = data.tobytes(), self.jpeg_version + 1
        return True

    def close(self, summary: dict) -> None:
        self.summary = summary


class LiveSource:
    """Runs the loop on ``text`` (a --source string) until ``stop()``; video files and folders loop."""

    def __init__(self, text: str, classifier, metrics, *, warn=None):
        self.text = text
        self.source = parse_source(text, warn=warn)
        self.output = MetricsOutput(metrics)
        self._classifier = classifier
        self._stop = StopFlag()
        self._warn = warn
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edgecnn-source", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        options = LoopOptions(loop=True, realtime=not self.source.live)
        try:
            run_loop(self._classifier, self.source, [self.output], options, self._stop, warn=self._warn)
        except Exception as exc:  # reported through /readyz and the log; the API keeps serving
            self.error = exc
            if self._warn:
                self._warn(f"source {self.text} stopped: {exc}")

    def delivering(self) -> bool:
        last = self.output.last_frame_at
        return last is not None and time.monotonic() - last < STALE_AFTER_S and self.error is None

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.request("server shutdown")
        self._thread.join(timeout)
