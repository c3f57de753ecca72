"""The loop's running statistics (RunningStats) on hand-made timings: the figures a run's summary
reports, checked against numpy and arithmetic (found untested by tools/mutation_score.sh)."""

import numpy as np
import pytest

from edgecnn.runtime.live.loop import STAGES, RunningStats


def test_latency_mean_covers_every_frame_and_percentiles_the_window():
    stats = RunningStats(window=4)
    latencies = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
    for i, ms in enumerate(latencies):
        stats.add({}, ms, now=float(i))
    summary = stats.latency_summary()
    window = latencies[-4:]
    assert summary == {"mean": round(sum(latencies) / len(latencies), 4),
                       "p50": round(float(np.percentile(window, 50)), 4),
                       "p90": round(float(np.percentile(window, 90)), 4), "max": max(window)}


def test_an_empty_summary_has_the_same_fields_without_values():
    full = RunningStats()
    full.add({}, 5.0, now=0.0)
    assert RunningStats().latency_summary() == dict.fromkeys(full.latency_summary(), None)


def test_stage_means_divide_each_stages_total_by_the_frames():
    stats = RunningStats()
    stage = STAGES[0]
    for i, ms in enumerate([1.0, 2.0, 6.0]):
        stats.add({stage: ms, "extra": 3.0}, 0.0, now=float(i))
    means = stats.stage_means()
    assert means[stage] == 3.0 and means["extra"] == 3.0
    assert all(means[other] == 0.0 for other in STAGES[1:])
    assert stats.frames == 3


def test_fps_starts_at_the_first_interval_then_smooths_ten_percent_per_result():
    stats = RunningStats()
    stats.add({}, 0.0, now=10.0)
    assert stats.fps == 0.0  # one result: no interval yet
    stats.add({}, 0.0, now=10.5)
    assert stats.fps == pytest.approx(2.0)  # 1 / 0.5 s
    stats.add({}, 0.0, now=10.75)
    assert stats.fps == pytest.approx(0.9 * 2.0 + 0.1 * 4.0)
    stats.add({}, 0.0, now=10.75)  # same instant: no rate from a zero interval
    assert stats.fps == pytest.approx(2.2)
    assert (stats.first_result_at, stats.last_result_at) == (10.0, 10.75)
