"""The live classification loop: capture -> preprocess -> inference -> postprocess -> output.

Two ways to run the stages, chosen from their measured times (``modes``):
- inline: one thread runs every stage of a frame before the next frame. Recorded sources
  (files, folders) then have no thread at all: every frame, in order, as fast as the sum of
  the stages. Live sources (and ``--realtime``) keep their capture thread, which keeps only
  the newest frame (``LatestSlot``), so a result is never about a stale frame.
- pipelined: a capture thread and one worker (preprocess + inference + postprocess) behind
  it, outputs in the calling thread: as fast as the slowest stage, plus the hand-offs. Recorded
  sources go through a short FIFO (every frame, in order), live ones through the newest-frame slot.
With stages of a fraction of a millisecond the hand-offs can cost more than the overlap saves;
with a 20 ms invoke and a 5 ms decode the overlap wins. ``mode="auto"`` (the default) runs inline
over the first frames, estimates both modes from the measured stages and hand-off cost, tries
the pipeline when that looks faster and keeps it only if it measured faster; both modes measure
again every ``modes.RECHECK_FRAMES`` frames and may switch either way (``modes.ModeChooser``). A
run is a sequence of segments, each inline or pipelined; a pipelined segment ends by retiring its
threads and draining their queues, so no frame is lost or reordered. Outputs always run in the
calling (main) thread, because OpenCV windows must live there.

Every stage is timed per frame. Outputs get one call per frame and a summary at the end (with
the mode and why), also when the run is stopped by q/Esc, Ctrl-C, SIGTERM, ``max_frames`` or
``duration``. The loop keeps running statistics only (bounded memory for runs of any length).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

import numpy as np

from edgecnn.errors import EdgecnnError, RecipeError
from edgecnn.runtime.live.capture import Backoff, Capturer, CaptureThread, Frame
from edgecnn.runtime.live.channels import END, Fifo, LatestSlot
from edgecnn.runtime.live.frame_input import FrameInput
from edgecnn.runtime.live.modes import MODES, ModeChooser
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
    mode: str = "auto"  # "auto" | "inline" | "pipeline"


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
    scores: np.ndarray | None = None
    prediction: Prediction | None = None
    ready_at: float = 0.0  # time.perf_counter() when the prediction was ready
    cam: object | None = None  # run --explain: the frame's class activation map (runtime.explain.live.CamFrame)


@dataclasses.dataclass
class FrameResult:
    """What outputs get for each processed frame."""

    frame: Frame
    prediction: Prediction
    stages_ms: dict
    latency_ms: float  # from the source handing the frame over to the prediction being ready
    fps: float  # smoothed rate of results so far
    annotated: np.ndarray | None = None  # the frame with its overlay, drawn once by overlay.annotated
    cam: object | None = None  # run --explain: blended into the overlay by overlay.annotated


class StageWorker(threading.Thread):
    """Runs ``steps`` (stage name, function of Work) on every item from ``inbox`` into ``outbox``.

    ``retire`` (live sources): once set, the worker finishes the frame in hand and leaves, so the
    loop can go back to inline on the same newest-frame slot. Recorded sources retire their
    capture thread instead and the worker drains the queue, so no frame is lost or reordered."""

    def __init__(self, name: str, steps, inbox, outbox, stop: StopFlag, retire: threading.Event | None = None):
        super().__init__(name=f"edgecnn-{name}", daemon=True)
        self.steps, self.inbox, self.outbox, self.stop = steps, inbox, outbox, stop
        self.retire = retire
        self.error: EdgecnnError | None = None

    def run(self) -> None:
        try:
            while (item := self.inbox.get(self.retire)) is not END:
                work = item if isinstance(item, Work) else Work(frame=item)
                _run_steps(work, self.steps)
                if not self.outbox.put(work) or (self.retire is not None and self.retire.is_set()):
                    return
        except EdgecnnError as exc:
            self.error = exc
            self.stop.request("error")
        finally:
            self.outbox.close()


def _run_steps(work: Work, steps, cpu_ms: dict | None = None) -> None:
    """Run and time each step; ``cpu_ms`` (when given) also gets each step's CPU time in this thread."""
    for stage, step in steps:
        cpu = time.thread_time() if cpu_ms is not None else 0.0
        started = time.perf_counter()
        step(work)
        work.stages_ms[stage] = (time.perf_counter() - started) * 1e3
        if cpu_ms is not None:
            cpu_ms[stage] = (time.thread_time() - cpu) * 1e3


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
    if options.mode not in MODES:
        raise RecipeError(f"loop mode {options.mode!r} is not one of {', '.join(MODES)}")
    stop = stop or StopFlag()
    source.open()
    live = source.live or options.realtime
    capturer = Capturer(source, stop.event, loop=options.loop, realtime=options.realtime, backoff=options.backoff,
                        warn=warn)
    run = _Run(_steps(classifier, options), outputs, options, stop, RunningStats(), ModeChooser(options.mode, live=live),
               capturer, LatestSlot(stop.event) if live else None)
    timer = threading.Timer(options.duration, stop.request, args=("duration",)) if options.duration else None
    started = time.perf_counter()
    summary: dict = {}
    try:
        if timer:
            timer.daemon = True
            timer.start()
        if live:  # the newest-frame policy needs a thread draining the camera, in both modes
            run.start(CaptureThread(source, run.slot, stop.event, capturer=capturer))
        finished = False
        while not finished:  # segments: inline until the chooser says pipeline, pipelined until it says inline
            finished = _run_inline(run) if run.chooser.mode == "inline" else _run_pipelined(run)
    except EdgecnnError:
        stop.request("error")
        raise
    finally:
        stop.request("end")  # no-op if a reason was already recorded
        if timer:
            timer.cancel()
        for thread in run.threads:  # a stream's read may block until its timeout: wait that long too
            thread.join(max(_JOIN_TIMEOUT_S, getattr(source, "timeout_s", 0.0) + 1.0))
        source.release()  # idempotent; the capture thread released it unless it hung in read()
        summary = _summary(classifier, source, run.stats, capturer, run.slot.dropped if live else 0, stop, started)
        summary.update(run.chooser.summary(), zero_copy_input=run.steps.frame_input.zero_copy)
        summary.update(capturer.report(time.perf_counter()))  # outages, reconnects, bad frames (issue 14)
        _close_outputs(outputs, summary)
    for thread in run.threads:
        if thread.error is not None:
            raise thread.error
    return summary


@dataclasses.dataclass
class _Run:
    """What every segment of a run shares."""

    steps: "_Steps"
    outputs: list
    options: LoopOptions
    stop: StopFlag
    stats: RunningStats
    chooser: ModeChooser
    capturer: Capturer
    slot: LatestSlot | None  # live sources: the newest-frame slot their capture thread fills
    threads: list = dataclasses.field(default_factory=list)  # every thread started, joined at the end

    def start(self, thread: threading.Thread) -> None:
        self.threads.append(thread)
        thread.start()

    def over(self) -> bool:
        return self.stop.is_set() or self.capturer.stats.ended or any(t.error is not None for t in self.threads)


def _run_inline(run: _Run) -> bool:
    """Every stage in this thread, frame after frame; True when the run is over, False when the
    chooser says pipeline."""
    next_frame = run.slot.get if run.slot is not None else run.capturer.next_frame
    steps, chooser, live = run.steps, run.chooser, run.slot is not None
    while not run.stop.is_set():
        # CPU times (a system call each) only in probe windows: outside them the loop is the naive one.
        cpu_ms = {} if chooser.probing() else None
        cpu = time.thread_time() if cpu_ms is not None else 0.0
        frame = next_frame()
        if frame is None or frame is END:
            return True
        if cpu_ms is not None and not live:  # a live source's capture runs in its own thread
            cpu_ms["capture"] = (time.thread_time() - cpu) * 1e3
        work = Work(frame=frame)
        _run_steps(work, steps, cpu_ms)
        cpu = time.thread_time() if cpu_ms is not None else 0.0
        keep_going = _deliver(work, run.outputs, run.options, run.stop, run.stats)
        if cpu_ms is not None:
            cpu_ms["output"] = (time.thread_time() - cpu) * 1e3
        if not keep_going:
            return True
        if chooser.observe(work.stages_ms, cpu_ms, work.ready_at) != "inline":
            return run.over()
    return True


def _run_pipelined(run: _Run) -> bool:
    """A capture thread (recorded sources; live ones have theirs already) and a worker, outputs
    here; True when the run is over, False when the chooser says inline (the threads have then
    left and every frame they took has been delivered, in order)."""
    retire = threading.Event()
    results = Fifo(run.stop.event, maxsize=2)
    if run.slot is not None:
        inbox = run.slot
    else:  # the capture thread goes on from the capturer's position: switching is seamless
        inbox = Fifo(run.stop.event)
        run.start(CaptureThread(run.capturer.source, inbox, run.stop.event, capturer=run.capturer, retire=retire))
    worker = StageWorker("infer", run.steps, inbox, results, run.stop, retire if run.slot is not None else None)
    run.start(worker)
    while (work := results.get()) is not END:
        if not _deliver(work, run.outputs, run.options, run.stop, run.stats):
            return True
        if not retire.is_set() and run.chooser.observe(work.stages_ms, None, work.ready_at) != "pipeline":
            retire.set()  # drain: the frames already taken still come out here, in order
    for thread in run.threads[-2:] if run.slot is None else [worker]:
        thread.join(_JOIN_TIMEOUT_S)
    return run.over() or not retire.is_set()


class _Steps(list):
    """The worker's (stage, function) list, with the FrameInput they share."""

    frame_input: FrameInput


def _steps(classifier, options: LoopOptions) -> _Steps:
    frame_input = FrameInput(classifier)

    def preprocess(work: Work) -> None:
        frame_input.write(work.frame.image)  # straight into the input tensor

    cam_for = getattr(classifier, "cam_for", None)  # run --explain: the map from the same invoke

    def inference(work: Work) -> None:
        work.scores = frame_input.infer()
        if cam_for is not None:
            work.cam = cam_for(work.scores)

    # Preprocess and inference share a thread in both modes: the frame is written into the input
    # tensor, so they must take turns; a separate preprocess thread also measured slower on 2 cores
    # (pipeline/slowest stage 0.69 vs 0.76-0.81, docs/device.md).
    steps = _Steps([("preprocess", preprocess), ("inference", inference),
                    ("postprocess", _Postprocess(classifier.labels, options))])
    steps.frame_input = frame_input
    return steps


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


def _deliver(work: Work, outputs, options: LoopOptions, stop: StopFlag, stats: RunningStats) -> bool:
    """Hand one finished frame to every output; False when the run should stop."""
    started = time.perf_counter()
    work.stages_ms["capture"] = work.frame.read_ms
    latency_ms = (work.ready_at - work.frame.captured_at) * 1e3
    result = FrameResult(frame=work.frame, prediction=work.prediction, stages_ms=work.stages_ms,
                         latency_ms=latency_ms, fps=stats.fps, cam=work.cam)
    keep_going = all([output.write(result) is not False for output in outputs])
    work.stages_ms["output"] = (time.perf_counter() - started) * 1e3
    stats.add(work.stages_ms, latency_ms, work.ready_at)
    if not keep_going:
        stop.request("key")
        return False
    if options.max_frames is not None and stats.frames >= options.max_frames:
        stop.request("max-frames")
        return False
    return True


def _summary(classifier, source, stats: RunningStats, capture: Capturer, dropped: int, stop: StopFlag,
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
        "dropped": dropped,
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
