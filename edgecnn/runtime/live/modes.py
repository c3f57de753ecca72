"""Inline or pipelined: which way the loop runs its stages, from their measured times.

The stages fall into three groups that can run in parallel: capture (read + decode), work
(preprocess + inference + postprocess) and output. Inline, one thread runs them one after the
other, so a frame costs their sum (live sources keep their capture thread in both modes, for the
newest-frame policy, so inline costs ``max(capture, work + output)`` there). Pipelined, each group
has its thread, so a frame costs the slowest group, but never less than the CPU work spread over
the cores, plus a thread hand-off per extra boundary.

Hand-offs are a wake-up of a sleeping thread through a condition variable, with the GIL changing
hands. What one costs depends on the machine and on how busy it is (tens of microseconds on an
idle core, milliseconds when other processes hold the cores and a woken thread waits for its
turn), so the chooser measures it: ``measure_handoff_ms`` passes a token back and forth between
two threads through the loop's own channel, and ``HANDOFF_MS`` is only the floor.
The loop pipelines only when that estimate is at least ``MARGIN`` faster than inline, so noise
in a few probe frames does not buy a mode whose gain is within measurement error.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import threading
import time

from edgecnn.runtime.live.channels import END, Fifo

MODES = ("auto", "inline", "pipeline")
# The least a hand-off is taken to cost in throughput, whatever the ping-pong measured. The
# ping-pong sees only the wake-up (10-20 us here); a pipeline also pays for the GIL changing hands
# between Python glue in three threads: 0.15-0.2 ms per hand-off on the idle 2-core VM (issue 16:
# pipelined 0.49 ms/frame against 0.15 ms for the slowest stage alone).
HANDOFF_MS = 0.15
HANDOFF_TRIPS = 24  # round trips of the ping-pong (a few ms on an idle machine)
MARGIN = 0.15  # the pipeline must be estimated this much faster than inline to be chosen
SKIP_FRAMES = 3  # first frames (first invoke, caches) are not representative
PROBE_FRAMES = 30  # frames averaged per decision
RECHECK_FRAMES = 600  # inline runs re-decide this often (the scene, the load, thermal throttling change)
_WORK = ("preprocess", "inference", "postprocess")


def other_load(own_cores: float = 1.0) -> float:
    """Cores other processes keep busy: the 1-minute load average minus the cores this process
    used (its CPU time over wall time in the probe window, interpreter threads included)."""
    try:
        return max(0.0, os.getloadavg()[0] - own_cores)
    except (OSError, AttributeError):  # not available on this platform
        return 0.0


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclasses.dataclass
class Decision:
    mode: str  # "inline" | "pipeline"
    reason: str
    inline_ms: float | None = None  # estimated time per frame, each way
    pipeline_ms: float | None = None


def measure_handoff_ms(trips: int = HANDOFF_TRIPS) -> float:
    """Median one-way time of a hand-off between two threads through a ``Fifo``, in ms."""
    stop = threading.Event()
    there, back = Fifo(stop, maxsize=1), Fifo(stop, maxsize=1)

    def echo():
        while (item := there.get()) is not END:
            back.put(item)

    thread = threading.Thread(target=echo, name="edgecnn-handoff-probe", daemon=True)
    thread.start()
    times = []
    for i in range(trips):
        started = time.perf_counter()
        there.put(i)
        back.get()
        times.append((time.perf_counter() - started) * 1e3 / 2)
    there.close()
    thread.join(1.0)
    return statistics.median(times)


def decide(wall_ms: dict, cpu_ms: dict, *, live: bool, cores: int, handoff_ms: float = HANDOFF_MS,
           load: float = 0.0) -> Decision:
    """The mode for these mean stage times (wall and this thread's CPU, ms per frame).

    ``load`` is what other processes keep busy (``other_load``): with less than two cores left
    to this process, threads cannot overlap, they only queue for the same core."""
    capture, output = wall_ms.get("capture", 0.0), wall_ms.get("output", 0.0)
    work = sum(wall_ms.get(stage, 0.0) for stage in _WORK)
    cpu = sum(cpu_ms.values())
    if live:  # capture already has its thread: pipelining only splits work from output
        inline = max(capture, work + output)
        pipeline = max(capture, work, output, cpu / max(cores - 1, 1)) + handoff_ms
        groups = f"capture {capture:.2f} in its own thread, work {work:.2f} + output {output:.2f} ms"
    else:
        inline = capture + work + output
        pipeline = max(capture, work, output, cpu / cores) + 2 * handoff_ms
        groups = f"capture {capture:.2f} + work {work:.2f} + output {output:.2f} ms"
    estimate = (f"{groups}: inline {inline:.2f} ms/frame, pipelined about {pipeline:.2f} on {cores} core(s) "
                f"with hand-offs of {handoff_ms:.3f} ms")
    free = cores - load
    if free < 2:
        return Decision("inline", f"no idle core to overlap on (other load {load:.1f} on {cores} core(s); {estimate})",
                        inline, pipeline)
    if pipeline < (1 - MARGIN) * inline:
        return Decision("pipeline", f"stages heavy enough to overlap ({estimate})", inline, pipeline)
    return Decision("inline", f"hand-offs would cost more than overlapping saves ({estimate})", inline, pipeline)


class ModeChooser:
    """Collects stage times over probe windows of an inline run and says when to pipeline.

    Windows: PROBE_FRAMES frames after the first SKIP_FRAMES, then PROBE_FRAMES frames ending
    RECHECK_FRAMES after the previous decision. A forced mode (``inline``/``pipeline``) never changes.
    """

    def __init__(self, mode: str = "auto", *, live: bool, cores: int | None = None, handoff_ms=None):
        self.forced = mode != "auto"
        self.live, self.cores = live, cores or usable_cores()
        self._handoff_ms = handoff_ms  # a function, called at each decision (the load changes)
        self.decisions = 0
        self.decision = Decision(mode, f"asked for ({mode})") if self.forced else \
            Decision("inline", "measuring the stages over the first frames")
        self._seen = 0
        self._wall: dict = {}
        self._cpu: dict = {}
        self._in_window = 0
        self._window_start = SKIP_FRAMES
        self._window_started = (0.0, 0.0)  # perf_counter, process_time at the window's first frame

    @property
    def mode(self) -> str:
        return self.decision.mode

    def probing(self) -> bool:
        """Whether the next frame falls in a probe window (then its CPU times are wanted too)."""
        return not self.forced and self._seen >= self._window_start

    def observe(self, wall_ms: dict, cpu_ms: dict | None) -> str:
        """Record one frame's stage times; returns the mode to run the next frame in."""
        if cpu_ms is not None:
            if self._in_window == 0:
                self._window_started = (time.perf_counter(), time.process_time())
            for stage, ms in wall_ms.items():
                self._wall[stage] = self._wall.get(stage, 0.0) + ms
            for stage, ms in cpu_ms.items():
                self._cpu[stage] = self._cpu.get(stage, 0.0) + ms
            self._in_window += 1
            if self._in_window == PROBE_FRAMES:
                self._decide()
        self._seen += 1
        return self.mode

    def _decide(self) -> None:
        n = self._in_window
        wall0, cpu0 = self._window_started
        own_cores = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
        handoff = max(HANDOFF_MS, (self._handoff_ms or measure_handoff_ms)())
        self.decision = decide({k: v / n for k, v in self._wall.items()}, {k: v / n for k, v in self._cpu.items()},
                               live=self.live, cores=self.cores, handoff_ms=handoff, load=other_load(own_cores))
        self.decision.reason += f" after {self._seen + 1} frames"
        self.decisions += 1
        self._wall, self._cpu, self._in_window = {}, {}, 0
        self._window_start = self._seen + 1 + RECHECK_FRAMES - PROBE_FRAMES

    def summary(self) -> dict:
        d = self.decision
        return {"mode": d.mode, "mode_reason": d.reason,
                "mode_estimate_ms": None if d.inline_ms is None else
                {"inline": round(d.inline_ms, 4), "pipeline": round(d.pipeline_ms, 4)}}
