"""The live classification loop: capture -> preprocess -> inference -> postprocess -> output.

Threads and hand-offs (see ``channels``): a capture thread and one worker behind it, for every
source (the comment in ``_workers`` says why: a separate preprocess thread measured slower on 2 cores).
- recorded sources (files, folders): capture hands every frame, in order, through a short FIFO,
  so the run goes as fast as the slower of the two threads and no frame is dropped;
- live sources (and ``--realtime``): capture keeps only the newest frame and the worker
  preprocesses and infers it as soon as it is free, so a result is never about a stale frame.
Postprocessing runs in the thread that ran inference (a result is ready without waiting for the
main thread); outputs run in the calling (main) thread, because OpenCV windows must live there.

Every stage is timed per frame. Outputs get one call per frame and a summary at the end, also
when the run is stopped by q/Esc, Ctrl-C, SIGTERM, ``max_frames`` or ``duration``. The loop
keeps running statistics only (bounded memory for runs of any length).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

import numpy as np

from edgecnn.errors import EdgecnnError
from edgecnn.runtime.live.capture import Backoff, CaptureThread, Frame
from edgecnn.runtime.live.channels import END, Fifo, LatestSlot
from edgecnn.runtime.live.outputs import STAGES
from edgecnn.runtime.postprocess import EmaSmoother, Prediction, check_postprocess_options, predict

_JOIN_TIMEOUT_S = 5.0


@dataclasses.dataclass
class LoopOptions:
    max_frames: int | None = None
    duration: float | None = None  # seconds
    top_k: int = 1
    threshold: float = 0.0
    smoothing: float = 0.0  # EMA factor, 0 = off
    realtime: bool = False
    loop: bool = False
    backoff: Backoff = dataclasses.field(default_factory=Backoff)


class StopFlag:
    """A stop event that remembers why the run stopped (the first reason wins)."""

    def __init__(self):
        self.event = threading.Event()
        self.reason: str | None = None
        self._lock = threading.Lock()

    def request(self, reason: str) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


@dataclasses.dataclass
class Work:
    """One frame on its way through the stages."""

    frame: Frame
    stages_ms: dict = dataclasses.field(default_factory=dict)
    tensor: np.ndarray | None = None
    scores: np.ndarray | None = None
    prediction: Prediction | None = None
    ready_at: float = 0.0  # time.perf_counter() when the prediction was ready


@dataclasses.dataclass
class FrameResult:
    """What outputs get for each processed frame."""

    frame: Frame
    prediction: Prediction
    stages_ms: dict
    latency_ms: float  # from the source handing the frame over to the prediction being ready
    fps: float  # smoothed rate of results so far
    annotated: np.ndarray | None = None  # the frame with its overlay, drawn once by overlay.annotated


class StageWorker(threading.Thread):
    """Runs ``steps`` (stage name, function of Work) on every item from ``inbox`` into ``outbox``."""

    def __init__(self, name: str, steps, inbox, outbox, stop: StopFlag):
        super().__init__(name=f"edgecnn-{name}", daemon=True)
        self.steps, self.inbox, self.outbox, self.stop = steps, inbox, outbox, stop
        self.error: EdgecnnError | None = None

    def run(self) -> None:
        try:
            while True:
                item = self.inbox.get()
                if item is END:
                    return
                work = item if isinstance(item, Work) else Work(frame=item)
                for stage, step in self.steps:
                    started = time.perf_counter()
                    step(work)
                    work.stages_ms[stage] = (time.perf_counter() - started) * 1e3
                if not self.outbox.put(work):
                    return
        except EdgecnnError as exc:
            self.error = exc
            self.stop.request("error")
        finally:
            self.outbox.close()


class RunningStats:
    """Means per stage, latency percentiles over a bounded window, and a smoothed FPS."""

    def __init__(self, window: int = 4096):
        self.frames = 0
        self.stage_totals = dict.fromkeys(STAGES, 0.0)
        self.latencies: collections.deque = collections.deque(maxlen=window)
        self.latency_total = 0.0
        self.first_result_at: float | None = None
        self.last_result_at: float | None = None
        self.fps = 0.0

    def add(self, stages_ms: dict, latency_ms: float, now: float) -> None:
        self.frames += 1
        for stage, ms in stages_ms.items():
            self.stage_totals[stage] = self.stage_totals.get(stage, 0.0) + ms
        self.latencies.append(latency_ms)
        self.latency_total += latency_ms
        if self.last_result_at is not None:
            interval = now - self.last_result_at
            if interval > 0:
                rate = 1.0 / interval
                self.fps = rate if self.fps == 0.0 else 0.9 * self.fps + 0.1 * rate
        if self.first_result_at is None:
            self.first_result_at = now
        self.last_result_at = now

    def stage_means(self) -> dict:
        n = max(self.frames, 1)
        return {stage: round(total / n, 4) for stage, total in self.stage_totals.items()}

    def latency_summary(self) -> dict:
        if not self.latencies:
            return {"mean": None, "p50": None, "p90": None, "max": None}
        window = np.fromiter(self.latencies, dtype=np.float64)
        return {"mean": round(self.latency_total / self.frames, 4), "p50": round(float(np.percentile(window, 50)), 4),
                "p90": round(float(np.percentile(window, 90)), 4), "max": round(float(window.max()), 4)}


def run_loop(classifier, source, outputs, options: LoopOptions, stop: StopFlag | None = None, *, warn=None) -> dict:
    """Classify frames from ``source`` until it ends or the run is stopped; return the summary.

    ``source`` must not be open yet: it is opened here so that a source that cannot open fails
    before any thread starts. Every output's ``close(summary)`` runs whatever ends the run.
    """
    check_postprocess_options(options.top_k, options.threshold, options.smoothing)
    stop = stop or StopFlag()
    source.open()
    live = source.live or options.realtime
    capture_out = LatestSlot(stop.event) if live else Fifo(stop.event)
    results = Fifo(stop.event, maxsize=2)
    capture = CaptureThread(source, capture_out, stop.event, loop=options.loop, realtime=options.realtime,
                            backoff=options.backoff, warn=warn)
    workers = _workers(classifier, capture_out, results, stop, options)
    stats = RunningStats()
    timer = threading.Timer(options.duration, stop.request, args=("duration",)) if options.duration else None
    started = time.perf_counter()
    summary: dict = {}
    try:
        for thread in (capture, *workers):
            thread.start()
        if timer:
            timer.daemon = True
            timer.start()
        _consume(results, outputs, options, stop, stats)
    finally:
        stop.request("end")  # no-op if a reason was already recorded
        if timer:
            timer.cancel()
        for thread in (capture, *workers):
            thread.join(_JOIN_TIMEOUT_S)
        source.release()  # idempotent; the capture thread released it unless it hung in read()
        summary = _summary(classifier, source, stats, capture, capture_out, stop, started)
        _close_outputs(outputs, summary)
    for thread in (capture, *workers):
        if thread.error is not None:
            raise thread.error
    return summary


def _workers(classifier, capture_out, results, stop: StopFlag, options: LoopOptions) -> list[StageWorker]:
    def preprocess(work: Work) -> None:
        work.tensor = classifier.preprocess_frame(work.frame.image)

    def inference(work: Work) -> None:
        work.scores = classifier.infer(work.tensor)

    postprocess = _Postprocess(classifier.labels, options)
    # One worker behind the capture thread, for every source. Live sources: it takes the newest frame
    # only when it is free (lowest capture-to-result latency). Files and folders: every frame in order.
    # A separate preprocess thread was measured slower on 2 cores (pipeline/slowest stage 0.69 vs this
    # layout's figure in docs/device.md): one more hand-off per frame, and decode, resize and invoke
    # already overlap across the capture thread and this one.
    steps = [("preprocess", preprocess), ("inference", inference), ("postprocess", postprocess)]
    return [StageWorker("infer", steps, capture_out, results, stop)]


class _Postprocess:
    """Scores -> Prediction in the worker that ran inference, so a result is ready without
    waiting for the main thread (which may be busy drawing the window)."""

    def __init__(self, labels, options: LoopOptions):
        self.labels, self.options = labels, options
        self.smoother = EmaSmoother(options.smoothing)
        self.gaps_seen = 0

    def __call__(self, work: Work) -> None:
        if work.frame.gaps_before != self.gaps_seen:
            self.gaps_seen = work.frame.gaps_before
            self.smoother.reset()  # scores from before an outage say nothing about the scene now
        work.prediction = predict(self.smoother(work.scores), self.labels, k=self.options.top_k,
                                  threshold=self.options.threshold)
        work.ready_at = time.perf_counter()


def _consume(results, outputs, options: LoopOptions, stop: StopFlag, stats: RunningStats) -> None:
    while True:
        work = results.get()
        if work is END:
            return
        started = time.perf_counter()
        work.stages_ms["capture"] = work.frame.read_ms
        latency_ms = (work.ready_at - work.frame.captured_at) * 1e3
        result = FrameResult(frame=work.frame, prediction=work.prediction, stages_ms=work.stages_ms,
                             latency_ms=latency_ms, fps=stats.fps)
        keep_going = all([output.write(result) is not False for output in outputs])
        work.stages_ms["output"] = (time.perf_counter() - started) * 1e3
        stats.add(work.stages_ms, latency_ms, work.ready_at)
        if not keep_going:
            stop.request("key")
            return
        if options.max_frames is not None and stats.frames >= options.max_frames:
            stop.request("max-frames")
            return


def _summary(classifier, source, stats: RunningStats, capture: CaptureThread, capture_out, stop: StopFlag,
             started: float) -> dict:
    elapsed = time.perf_counter() - started
    # FPS over the processing span (first to last result), falling back to the wall time.
    span = (stats.last_result_at - stats.first_result_at) if stats.frames > 1 else 0.0
    fps = (stats.frames - 1) / span if span > 0 else (stats.frames / elapsed if elapsed > 0 else 0.0)
    reason = "end-of-source" if stop.reason == "end" and capture.stats.ended else stop.reason
    return {
        "type": "summary",
        "frames": stats.frames,
        "fps": round(fps, 3),
        "elapsed_s": round(elapsed, 3),
        "stages_ms": stats.stage_means(),
        "latency_ms": stats.latency_summary(),
        "gaps": capture.stats.gaps,
        "gap_s": round(capture.stats.gap_s, 3),
        "dropped": capture_out.dropped,
        "loops": capture.stats.loops,
        "skipped": getattr(source, "skipped", 0),
        "stopped_by": reason,
        "source": source.describe(),
        "model": str(classifier.model_path),
        "runtime": classifier.runtime,
        "delegate": classifier.delegate,
        "threads": classifier.loaded.threads,
    }


def _close_outputs(outputs, summary: dict) -> None:
    errors = []
    for output in outputs:
        try:
            output.close(summary)
        except EdgecnnError as exc:  # keep closing the others (release the window, finish the recording)
            errors.append(exc)
    if errors:
        raise errors[0]
