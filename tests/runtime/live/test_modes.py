"""Inline or pipelined: the loop's choice on sources and models of known stage costs.

Stage costs are sleeps (a source whose read sleeps N ms, an interpreter whose invoke sleeps M ms),
so they hold on a loaded machine: sleeping takes no CPU and a sleeping thread does not hold the GIL.
"""

import threading
import time

import pytest
from tflite_models import write_model

from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.live import modes
from edgecnn.runtime.live.loop import LoopOptions, run_loop
from edgecnn.runtime.live.sources import SyntheticSource
from edgecnn.runtime.live.outputs import format_summary

LABELS = ["red", "green", "blue"]


class SlowInterpreter:
    """The real interpreter, with ``invoke`` taking ``invoke_ms`` longer."""

    def __init__(self, real, invoke_ms):
        self._real, self.invoke_ms = real, invoke_ms

    def invoke(self):
        time.sleep(self.invoke_ms / 1e3)
        self._real.invoke()

    def __getattr__(self, name):
        return getattr(self._real, name)


class SlowSource(SyntheticSource):
    """A synthetic source whose read takes ``read_ms`` (from frame ``slow_from`` on)."""

    def __init__(self, read_ms, slow_from=0, **kwargs):
        super().__init__(**kwargs)
        self.read_ms, self.slow_from = read_ms, slow_from

    def read(self):
        if self.read_ms and self.delivered >= self.slow_from:
            time.sleep(self.read_ms / 1e3)
        return super().read()


class Collect:
    def __init__(self, output_ms=0.0):
        self.results, self.summary, self.output_ms = [], None, output_ms

    def write(self, result):
        if self.output_ms:
            time.sleep(self.output_ms / 1e3)
        self.results.append(result)
        return True

    def close(self, summary):
        self.summary = summary


@pytest.fixture
def steady_handoffs(monkeypatch):
    """An idle machine (no other load, hand-offs of 0.2 ms), so a busy test machine cannot flip a
    choice that these tests check for stage costs; the load rule and the ping-pong are tested below."""
    monkeypatch.setattr(modes, "HANDOFFS", modes.HandoffCost(measure=lambda: 0.2))
    monkeypatch.setattr(modes, "other_load", lambda own_cores: 0.0)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("m") / "int8.tflite", kind="int8")


def _classifier(model, invoke_ms):
    classifier = TFLiteClassifier(model, threads=1)
    if invoke_ms:
        classifier.interpreter = SlowInterpreter(classifier.interpreter, invoke_ms)
    return classifier


def _run(model, source, *, invoke_ms=0.0, output_ms=0.0, **options):
    out = Collect(output_ms)
    summary = run_loop(_classifier(model, invoke_ms), source, [out], LoopOptions(**options), warn=lambda m: None)
    return summary, out


def _in_order_and_correct(out, source, count):
    assert [r.frame.index for r in out.results] == list(range(count))
    assert [r.prediction.label for r in out.results] == [LABELS[source.colour_index(i)] for i in range(count)]


def test_light_stages_run_inline_and_keep_every_frame(model, steady_handoffs):
    source = SlowSource(0, live=False, count=80, period=3)
    summary, out = _run(model, source)
    assert summary["mode"] == "inline" and "hand-offs would cost more" in summary["mode_reason"]
    assert summary["zero_copy_input"] is True
    _in_order_and_correct(out, source, 80)
    assert "ran inline: " in format_summary(summary)


def test_heavy_stages_pipeline_and_keep_every_frame_in_order(model, steady_handoffs):
    source = SlowSource(6, live=False, count=60, period=3)
    summary, out = _run(model, source, invoke_ms=6)
    assert summary["mode"] == "pipeline" and "heavy enough" in summary["mode_reason"]
    estimate = summary["mode_estimate_ms"]
    assert estimate["pipeline"] < estimate["inline"] and estimate["inline"] >= 12  # the two sleeps, at least
    _in_order_and_correct(out, source, 60)
    assert summary["frames"] == 60 and summary["dropped"] == 0


@pytest.mark.parametrize("mode", ["inline", "pipeline"])
def test_forced_modes_keep_every_recorded_frame_in_order(model, mode):
    source = SlowSource(0, live=False, count=50, period=2)
    summary, out = _run(model, source, mode=mode)
    assert summary["mode"] == mode and summary["mode_reason"] == f"asked for ({mode})"
    _in_order_and_correct(out, source, 50)


def test_the_chosen_mode_is_the_faster_one_for_heavy_stages(model):
    # Capture 15 ms and invoke 15 ms: inline takes their sum per frame, pipelined the larger one.
    # Costs this large keep the scheduler's wake-up delays (several ms at load 10 on 2 cores) small beside them.
    fps = {}
    for mode in ("inline", "pipeline"):
        summary, _ = _run(model, SlowSource(15, live=False, count=30), invoke_ms=15, mode=mode)
        fps[mode] = summary["fps"]
    # Expected ratio about 2 (30 vs 15 ms); measured 1.91-2.15 in 4 runs at load 10.3 on 2 cores. 1.4 leaves room for the
    # scheduler of a shared 2-core machine and still fails if the pipeline did not overlap.
    assert fps["pipeline"] > 1.4 * fps["inline"]


def test_an_inline_run_switches_when_the_stages_get_heavy(model, steady_handoffs, monkeypatch):
    monkeypatch.setattr(modes, "RECHECK_FRAMES", 60)
    source = SlowSource(5, slow_from=35, live=False, count=120, period=4)
    summary, out = _run(model, source, invoke_ms=5)
    # Frames 3-32 (read 0 + invoke 5 ms) say inline; the next window, frames 63-92, sees read 5 + invoke 5 ms.
    assert summary["mode"] == "pipeline" and summary["mode_reason"].endswith("after 93 frames")
    _in_order_and_correct(out, source, 120)


@pytest.mark.parametrize("output_ms,expected", [(0.0, "inline"), (15.0, "pipeline")])
def test_live_sources_keep_the_newest_frame_policy_in_both_modes(model, steady_handoffs, output_ms, expected):
    # A 1000 FPS camera and a 15 ms model: most frames are dropped; the ones processed are fresh.
    source = SyntheticSource(fps=1000)
    summary, out = _run(model, source, invoke_ms=15, output_ms=output_ms, max_frames=36)
    assert summary["mode"] == expected
    indices = [r.frame.index for r in out.results]
    assert indices == sorted(indices) and len(set(indices)) == 36
    assert summary["dropped"] > 36  # many frames arrive during each 15 ms invoke
    # Newest frame: capture-to-result is the invoke plus a little, not a queue of stale frames. Measured p50
    # 16.1-16.7 ms in 8 runs at load 10.3 on 2 cores, and once 23.0 ms while a mutation run shared the machine.
    # A FIFO of the camera's frames would put the p50 near 18 frames x 15 ms = 270 ms, so 3x the invoke still
    # tells the policies apart; the 1.5x latency goal is a benchmark figure (tools/bench_loop.py latency).
    assert summary["latency_ms"]["p50"] < 3 * 15


def test_decide_weighs_the_overlap_against_the_hand_offs():
    stages = {"capture": 0.15, "preprocess": 0.05, "inference": 0.1, "output": 0.02}
    light = modes.decide(stages, {}, live=False, cores=2, handoff_ms=0.1)
    assert light.mode == "inline" and light.inline_ms == pytest.approx(0.32)
    assert light.pipeline_ms == pytest.approx(0.15 + 2 * 0.1)
    # The same stages with the hand-offs the idle 2-core VM measures (10-20 us): overlapping pays.
    cheap = modes.decide(stages, {}, live=False, cores=2, handoff_ms=0.015)
    assert cheap.mode == "pipeline" and cheap.pipeline_ms == pytest.approx(0.15 + 2 * 0.015)
    heavy = modes.decide({"capture": 5.0, "inference": 20.0, "output": 0.1}, {}, live=False, cores=4)
    assert heavy.mode == "pipeline" and heavy.pipeline_ms == pytest.approx(20.0 + 2 * modes.HANDOFF_FLOOR_MS)
    # A machine so busy that a woken thread waits 10 ms for a core: overlapping no longer pays.
    assert modes.decide({"capture": 5.0, "inference": 20.0}, {}, live=False, cores=4, handoff_ms=10).mode == "inline"
    # Other processes keep all but one core busy: threads would only queue for it.
    busy = modes.decide({"capture": 5.0, "inference": 20.0}, {}, live=False, cores=4, load=3.2)
    assert busy.mode == "inline" and "no idle core" in busy.reason
    # All CPU, one core: nothing can overlap, whatever the stages.
    one_core = modes.decide({"capture": 5.0, "inference": 5.0}, {"capture": 5.0, "inference": 5.0}, live=False,
                            cores=1)
    assert one_core.mode == "inline"


def test_handoff_probe_measures_a_round_trip_and_leaves_no_thread():
    import threading

    started = time.perf_counter()
    one_way = modes.measure_handoff_ms(trips=16)
    elapsed_ms = (time.perf_counter() - started) * 1e3
    assert 0 < one_way and 2 * one_way * 16 <= elapsed_ms * 1.5  # the median trip fits in the time it took
    assert not [t for t in threading.enumerate() if t.name == "edgecnn-handoff-probe"]


def test_the_hand_off_cost_is_measured_once_per_process_then_learned(model, monkeypatch):
    calls = []
    cost = modes.HandoffCost(measure=lambda: calls.append(1) or 0.012)
    monkeypatch.setattr(modes, "HANDOFFS", cost)
    monkeypatch.setattr(modes, "other_load", lambda own_cores: 0.0)
    for _ in range(2):  # two runs in one process: one ping-pong
        summary, _ = _run(model, SlowSource(0, live=False, count=40))
        assert "hand-offs of 0.012 ms (ping-pong)" in summary["mode_reason"] and summary["handoff_ms"] == 0.012
    assert len(calls) == 1
    cost.learn(0.4)
    assert cost.estimate() == (0.4, "measured in a pipelined trial") and len(calls) == 1
    # Then halfway back to the ping-pong at each use until a trial measures again: one unlucky trial
    # does not keep the process inline for good.
    assert cost.estimate()[0] == pytest.approx((0.4 + 0.012) / 2)
    assert cost.estimate()[0] == pytest.approx(((0.4 + 0.012) / 2 + 0.012) / 2)
    cost.learn(-1.0)  # a pipeline faster than its estimate: the floor, never a negative cost
    assert cost.estimate()[0] == modes.HANDOFF_FLOOR_MS


class ThreadSlowSource(SlowSource):
    """Reads take ``read_ms`` in the loop's own thread and ``thread_ms`` in a capture thread: a
    pipeline that costs more than its stages said (as contended hand-offs do on a busy machine)."""

    def __init__(self, read_ms, thread_ms, **kwargs):
        super().__init__(read_ms, **kwargs)
        self.thread_ms = thread_ms

    def read(self):
        if threading.current_thread() is not threading.main_thread():
            time.sleep(self.thread_ms / 1e3)
        return super().read()


def test_a_pipelined_trial_that_measures_slower_goes_back_to_inline(model, steady_handoffs):
    # Inline: read 5 + invoke 5 = 10 ms/frame, and the estimate says pipelined about 5.4. Pipelined,
    # each read takes 5 + 20 ms in the capture thread, so the trial measures about 25 ms/frame.
    source = ThreadSlowSource(5, 20, live=False, count=100, period=4)
    summary, out = _run(model, source, invoke_ms=5)
    # Frames 3-32 decide (pipeline), 41-70 are the trial: back to inline after 71 frames.
    assert summary["mode"] == "inline" and summary["mode_switches"] == 2, summary
    assert "pipelining did not pay" in summary["mode_reason"], summary
    assert summary["mode_reason"].endswith("after 71 frames"), summary
    estimate = summary["mode_estimate_ms"]
    assert estimate["pipeline"] > estimate["inline"] >= 10, summary  # measured, both ways: the sleeps at least
    # What the trial cost beyond the stages becomes the hand-off estimate: (measured pipelined - the slowest
    # stage) / 2 hand-offs, and the slowest stage is at most the measured inline time, so at least half the
    # difference of the two measurements (about 7.5 ms here; the ping-pong said 0.2).
    learned = modes.HANDOFFS.learned
    assert learned >= (estimate["pipeline"] - estimate["inline"]) / 2 > 10 * 0.2, (learned, summary)
    assert summary["handoff_ms"] == round(learned, 4)
    _in_order_and_correct(out, source, 100)
    assert summary["dropped"] == 0


def _load_after(monkeypatch, decisions):
    """other_load: 0 for the first ``decisions`` decisions, then 1.5 of 2 cores busy."""
    calls = []
    monkeypatch.setattr(modes, "other_load", lambda own_cores: calls.append(1) or (0.0 if len(calls) <= decisions
                                                                                   else 1.5))
    monkeypatch.setattr(modes, "usable_cores", lambda: 2)


def test_a_pipelined_run_goes_back_to_inline_when_the_cores_get_busy(model, steady_handoffs, monkeypatch):
    monkeypatch.setattr(modes, "RECHECK_FRAMES", 60)
    _load_after(monkeypatch, 2)  # the choice (frame 33) and the trial (71) see idle cores, the recheck (131) not
    source = SlowSource(4, live=False, count=150, period=4)
    summary, out = _run(model, source, invoke_ms=4)
    assert summary["mode"] == "inline" and summary["mode_switches"] == 2
    assert "no idle core to overlap on any more" in summary["mode_reason"]
    assert summary["mode_reason"].endswith("after 131 frames")
    _in_order_and_correct(out, source, 150)  # every frame, in order, across both switches


def test_a_live_source_keeps_the_newest_frame_policy_across_switches(model, steady_handoffs, monkeypatch):
    monkeypatch.setattr(modes, "PROBE_FRAMES", 10)
    monkeypatch.setattr(modes, "RECHECK_FRAMES", 30)
    _load_after(monkeypatch, 2)  # decisions after 13 (pipeline), 31 (trial: kept), 61 (busy: inline)
    source = SyntheticSource(fps=1000)
    summary, out = _run(model, source, invoke_ms=6, output_ms=6, max_frames=75)
    assert summary["mode"] == "inline" and summary["mode_switches"] == 2
    assert summary["mode_reason"].endswith("after 61 frames")
    indices = [r.frame.index for r in out.results]
    assert len(indices) == 75 and indices == sorted(indices) and len(set(indices)) == 75
    assert summary["dropped"] > 75  # a 1000 FPS camera and 6-12 ms per frame: most frames are dropped
    assert summary["latency_ms"]["p50"] < 1.5 * 6  # fresh frames, not a queue, in both modes


def test_the_process_own_recent_cpu_is_not_counted_as_other_load(monkeypatch):
    # A fake clock: this process ran 1.5 cores for the last 90 s, so the 1-minute load average of
    # 1.7 is mostly its own; the probe window alone (1.0 core, inline) would leave 0.7 "other".
    clock = iter([(0.0, 0.0), (30.0, 45.0), (90.0, 135.0)])
    own = modes.OwnCpu(clock=lambda: next(clock))
    assert own.recent_cores() == pytest.approx(45.0 / 30.0)
    monkeypatch.setattr(modes, "OWN_CPU", own)
    monkeypatch.setattr(modes.os, "getloadavg", lambda: (1.7, 1.7, 1.7))
    # Over the last 60 s (from the sample at 30 s): (135 - 45) / 60 = 1.5 cores of its own.
    assert modes.other_load(1.0) == pytest.approx(0.2)
    assert modes.OwnCpu(clock=lambda: (5.0, 1.0)).recent_cores() == 0.0  # under a second of history: no figure
