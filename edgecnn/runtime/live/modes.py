"""Inline or pipelined: which way the loop runs its stages, from their measured times.

The stages fall into three groups that can run in parallel: capture (read + decode), work
(preprocess + inference + postprocess) and output. Inline, one thread runs them one after the
other, so a frame costs their sum (live sources keep their capture thread in both modes, for the
newest-frame policy, so inline costs ``max(capture, work + output)`` there). Pipelined, each group
has its thread, so a frame costs the slowest group, but never less than the CPU work spread over
the cores, plus a thread hand-off per extra boundary.

Hand-offs are a wake-up of a sleeping thread through a condition variable, with the GIL changing
hands. What one costs depends on the machine and on how busy it is (10-20 us one way on the idle
2-core VM, milliseconds when other processes hold the cores), so it is measured, not assumed
(``HandoffCost``): a ping-pong between two threads through the loop's own channel, once per
process, and then what each pipelined trial really cost beyond its stages.

An estimate only proposes: when it says pipeline, the loop pipelines for a trial window and keeps
the pipeline only if it measured faster than the inline window before it; otherwise it goes back
to inline. A pipelined run also re-checks, and goes back to inline when the stages got light or
the cores got busy, so a wrong or outdated choice costs a few dozen frames, not the run.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import statistics
import threading
import time

from edgecnn.runtime.live.channels import END, Fifo

MODES = ("auto", "inline", "pipeline")
HANDOFF_FLOOR_MS = 0.005  # the least a hand-off is taken to cost, whatever was measured
HANDOFF_TRIPS = 50  # round trips of the ping-pong (about 1-2 ms on an idle machine)
MARGIN = 0.05  # the estimate must say this much faster to try pipelining (the trial then checks it)
KEEP_MARGIN = 0.03  # a pipelined window must measure this much faster than inline to be kept
SKIP_FRAMES = 3  # first frames (first invoke, caches) are not representative
SWITCH_SKIP = 8  # frames after a switch that are not measured (the queues fill or drain)
PROBE_FRAMES = 30  # frames averaged per decision
RECHECK_FRAMES = 600  # each mode re-decides this often (the scene, the load, thermal throttling change)
_WORK = ("preprocess", "inference", "postprocess")


class OwnCpu:
    """This process's average cores over about the last minute, to take its own share out of the
    1-minute load average: a bench or a long run that pipelined at 1.5 cores for a minute is not
    "other load" when it next decides (the window's own cores alone missed that, and a lagging
    load average then read as a busy machine)."""

    SPAN_S = 60.0

    def __init__(self, clock=None):
        self._clock = clock or (lambda: (time.monotonic(), time.process_time()))
        self._samples: collections.deque = collections.deque([self._clock()], maxlen=256)

    def recent_cores(self) -> float:
        now_wall, now_cpu = now = self._clock()
        older = [s for s in self._samples if now_wall - s[0] >= self.SPAN_S]
        wall, cpu = older[-1] if older else self._samples[0]
        self._samples.append(now)
        return (now_cpu - cpu) / (now_wall - wall) if now_wall - wall >= 1.0 else 0.0


OWN_CPU = OwnCpu()  # from when the loop's modules were imported


def other_load(own_cores: float = 1.0) -> float:
    """Cores other processes keep busy: the 1-minute load average minus the cores this process
    used (the larger of its CPU time over wall time in the probe window, interpreter threads
    included, and its average over the last minute, ``OwnCpu``)."""
    own = max(own_cores, OWN_CPU.recent_cores())
    try:
        return max(0.0, os.getloadavg()[0] - own)
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
    inline_ms: float | None = None  # estimated (or measured) time per frame, each way
    pipeline_ms: float | None = None
    handoff_ms: float | None = None  # the hand-off cost the estimate used


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


class HandoffCost:
    """What one hand-off costs on this machine, measured once per process and corrected by use.

    First estimate: the ping-pong (``measure_handoff_ms``), run once per process, the first
    time a loop decides. Every pipelined trial then measures what pipelining really cost beyond
    the stages (``learn``); later decisions, in this run and in later runs of the same process,
    use that figure (the GIL changing hands between three threads can cost more than the bare
    wake-up the ping-pong sees), decaying back towards the ping-pong until the next trial.
    """

    def __init__(self, measure=None):
        self._measure = measure
        self.pingpong: float | None = None
        self.learned: float | None = None

    def estimate(self) -> tuple[float, str]:
        """(ms per hand-off, where the figure comes from).

        A learned figure counts fully once, then half as much at each later use (it moves halfway
        back to the ping-pong): a trial that ran during a burst of other load must not keep every
        later decision of the process inline, and a trial costs a few dozen frames at worst."""
        if self.pingpong is None:
            self.pingpong = max(HANDOFF_FLOOR_MS, (self._measure or measure_handoff_ms)())
        if self.learned is None:
            return self.pingpong, "ping-pong"
        used, self.learned = self.learned, (self.learned + self.pingpong) / 2
        return used, "measured in a pipelined trial"

    def learn(self, ms: float) -> None:
        self.learned = max(HANDOFF_FLOOR_MS, ms)


HANDOFFS = HandoffCost()  # per process


def handoffs_per_frame(live: bool) -> int:
    """Hand-offs pipelining adds: capture -> work -> output; a live source's capture has its thread anyway."""
    return 1 if live else 2


def decide(wall_ms: dict, cpu_ms: dict, *, live: bool, cores: int, handoff_ms: float = HANDOFF_FLOOR_MS,
           load: float = 0.0, handoff_from: str = "") -> Decision:
    """The mode for these mean stage times (wall and this thread's CPU, ms per frame).

    ``load`` is what other processes keep busy (``other_load``): with less than two cores left
    to this process, threads cannot overlap, they only queue for the same core."""
    capture, output = wall_ms.get("capture", 0.0), wall_ms.get("output", 0.0)
    work = sum(wall_ms.get(stage, 0.0) for stage in _WORK)
    cpu = sum(cpu_ms.values())
    handoffs = handoffs_per_frame(live) * handoff_ms
    if live:  # capture already has its thread: pipelining only splits work from output
        inline = max(capture, work + output)
        pipeline = max(capture, work, output, cpu / max(cores - 1, 1)) + handoffs
        groups = f"capture {capture:.2f} in its own thread, work {work:.2f} + output {output:.2f} ms"
    else:
        inline = capture + work + output
        pipeline = max(capture, work, output, cpu / cores) + handoffs
        groups = f"capture {capture:.2f} + work {work:.2f} + output {output:.2f} ms"
    estimate = (f"{groups}: inline {inline:.2f} ms/frame, pipelined about {pipeline:.2f} on {cores} core(s) "
                f"with hand-offs of {handoff_ms:.3f} ms" + (f" ({handoff_from})" if handoff_from else ""))
    if cores - load < 2:
        return Decision("inline", f"no idle core to overlap on (other load {load:.1f} on {cores} core(s); {estimate})",
                        inline, pipeline, handoff_ms)
    if pipeline < (1 - MARGIN) * inline:
        return Decision("pipeline", f"stages heavy enough to overlap ({estimate})", inline, pipeline, handoff_ms)
    return Decision("inline", f"hand-offs would cost more than overlapping saves ({estimate})", inline, pipeline,
                    handoff_ms)


def judge_pipeline(measured_ms: float, inline_ms: float, *, what: str, cores: int, load: float) -> Decision:
    """Keep pipelining, or go back to inline, from a pipelined window's measured ms/frame
    against ``inline_ms`` (measured over the last inline window, or estimated; ``what`` says which)."""
    compared = f"pipelined {measured_ms:.3f} ms/frame measured, inline {inline_ms:.3f} {what}"
    if cores - load < 2:
        return Decision("inline", f"no idle core to overlap on any more (other load {load:.1f} on {cores} "
                        f"core(s); {compared}): back to inline", inline_ms, measured_ms)
    if measured_ms < (1 - KEEP_MARGIN) * inline_ms:
        return Decision("pipeline", f"pipelining pays ({compared})", inline_ms, measured_ms)
    return Decision("inline", f"pipelining did not pay ({compared}): back to inline", inline_ms, measured_ms)


class _Window:
    """Sums of one probe window: stage times, and the first and last result times."""

    def __init__(self):
        self.frames, self.wall, self.cpu = 0, {}, {}
        self.first_at = self.last_at = 0.0
        self.cpu_started = 0.0

    def add(self, wall_ms: dict, cpu_ms: dict | None, now: float) -> None:
        if self.frames == 0:
            self.first_at, self.cpu_started = now, time.process_time()
        for stage, ms in wall_ms.items():
            self.wall[stage] = self.wall.get(stage, 0.0) + ms
        for stage, ms in (cpu_ms or {}).items():
            self.cpu[stage] = self.cpu.get(stage, 0.0) + ms
        self.frames += 1
        self.last_at = now

    def means(self, totals: dict) -> dict:
        return {stage: total / self.frames for stage, total in totals.items()}

    def ms_per_frame(self) -> float:
        """Measured time between results, everything included (the loop's own work too)."""
        return (self.last_at - self.first_at) * 1e3 / max(self.frames - 1, 1)

    def own_cores(self) -> float:
        return (time.process_time() - self.cpu_started) / max(self.last_at - self.first_at, 1e-9)


class ModeChooser:
    """Measures the stages over probe windows and says which mode to run the next frame in.

    Windows of PROBE_FRAMES frames: the first after SKIP_FRAMES frames, then one RECHECK_FRAMES
    after each decision. An inline window estimates both modes (``decide``); when that says
    pipeline, the loop pipelines and a trial window SWITCH_SKIP frames later measures it: the
    pipeline is kept only if it measured faster than the inline window did, and what it cost
    beyond the stages becomes the hand-off estimate (``HandoffCost.learn``). A pipelined recheck
    goes back to inline when the stages got light or the cores got busy. A forced mode never changes.
    """

    def __init__(self, mode: str = "auto", *, live: bool, cores: int | None = None,
                 handoffs: HandoffCost | None = None):
        self.forced = mode != "auto"
        self.live, self.cores = live, cores or usable_cores()
        self.handoffs = handoffs or HANDOFFS
        self.decisions = self.switches = 0
        self.decision = Decision(mode, f"asked for ({mode})") if self.forced else \
            Decision("inline", "measuring the stages over the first frames")
        self._seen = 0
        self._window = _Window()
        self._window_start = SKIP_FRAMES
        self._trial: tuple[float, float] | None = None  # (inline ms/frame measured, pipelined bound estimated)
        self._inline_glue = 0.0  # ms per frame an inline window measured beyond its stages

    @property
    def mode(self) -> str:
        return self.decision.mode

    def probing(self) -> bool:
        """Whether the next frame falls in a probe window (then its CPU times are wanted too)."""
        return not self.forced and self._seen >= self._window_start

    def observe(self, wall_ms: dict, cpu_ms: dict | None, now: float) -> str:
        """Record one frame's stage times (``now``: when its result was ready); returns the mode
        to run the next frame in."""
        if self.forced:
            return self.mode
        if self._seen >= self._window_start:
            self._window.add(wall_ms, cpu_ms, now)
            if self._window.frames == PROBE_FRAMES:
                self._decide()
        self._seen += 1
        return self.mode

    def _decide(self) -> None:
        window, was = self._window, self.mode
        load = other_load(window.own_cores())
        wall, measured = window.means(window.wall), window.ms_per_frame()
        if was == "inline":
            handoff, where = self.handoffs.estimate()
            self.decision = decide(wall, window.means(window.cpu), live=self.live, cores=self.cores,
                                   handoff_ms=handoff, load=load, handoff_from=where)
            self._inline_glue = max(0.0, measured - _inline_sum(wall, self.live))
            bound = self.decision.pipeline_ms - handoffs_per_frame(self.live) * handoff
            self._trial = (measured, bound) if self.decision.mode == "pipeline" else None
        else:
            self.decision = self._judge(wall, measured, load)
        self.decision.reason += f" after {self._seen + 1} frames"
        self.decisions += 1
        self.switches += self.mode != was
        self._window = _Window()
        if self._trial is not None:  # just switched to pipeline: measure it once the queues are full
            self._window_start = self._seen + 1 + SWITCH_SKIP
        else:  # the next window ends RECHECK_FRAMES after this decision
            self._window_start = self._seen + 1 + RECHECK_FRAMES - PROBE_FRAMES

    def _judge(self, wall: dict, measured: float, load: float) -> Decision:
        if self._trial is not None:  # the first pipelined window: compare with the inline one just measured
            inline_ms, bound = self._trial
            self._trial = None
            self.handoffs.learn((measured - bound) / handoffs_per_frame(self.live))
            return judge_pipeline(measured, inline_ms, what="measured", cores=self.cores, load=load)
        inline_ms = _inline_sum(wall, self.live) + self._inline_glue
        return judge_pipeline(measured, inline_ms, what="estimated from the stages", cores=self.cores, load=load)

    def summary(self) -> dict:
        d = self.decision
        estimate = None if d.inline_ms is None else {"inline": round(d.inline_ms, 4), "pipeline": round(d.pipeline_ms, 4)}
        handoff = self.handoffs.learned if self.handoffs.learned is not None else self.handoffs.pingpong
        return {"mode": d.mode, "mode_reason": d.reason, "mode_estimate_ms": estimate, "mode_switches": self.switches,
                "handoff_ms": None if self.forced or handoff is None else round(handoff, 4)}


def _inline_sum(wall: dict, live: bool) -> float:
    capture = wall.get("capture", 0.0)
    rest = sum(ms for stage, ms in wall.items() if stage != "capture")
    return max(capture, rest) if live else capture + rest
