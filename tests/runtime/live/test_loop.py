"""The staged loop: order, policies, reconnection, stops, smoothing, outputs and the summary."""

import io
import json
import threading

import cv2
import numpy as np
import pytest
from tflite_models import write_model

from edgecnn.errors import DataError, RecipeError
from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.live.capture import Backoff
from edgecnn.runtime.live.loop import LoopOptions, StopFlag, run_loop
from edgecnn.runtime.live.outputs import JsonLinesOutput, TextOutput
from edgecnn.runtime.live.overlay import RecordOutput
from edgecnn.runtime.live.sources import SyntheticSource
from edgecnn.runtime.postprocess import EmaSmoother, predict, top_k

LABELS = ["red", "green", "blue"]
FAST_BACKOFF = Backoff(initial_s=0.001, maximum_s=0.004)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    return TFLiteClassifier(write_model(tmp_path_factory.mktemp("m") / "int8.tflite", kind="int8"), threads=1)


class Collect:
    """An output that keeps every result and the summary; optionally asks to stop after N frames."""

    def __init__(self, stop_after=None):
        self.results, self.summary, self.stop_after = [], None, stop_after

    def write(self, result):
        self.results.append(result)
        return self.stop_after is None or len(self.results) < self.stop_after

    def close(self, summary):
        self.summary = summary


def _run(classifier, source, outputs=None, **options):
    outputs = outputs if outputs is not None else [Collect()]
    options.setdefault("backoff", FAST_BACKOFF)
    summary = run_loop(classifier, source, outputs, LoopOptions(**options), warn=lambda message: None)
    return summary, outputs


def test_recorded_source_is_processed_in_order_without_drops(classifier):
    source = SyntheticSource(live=False, count=45, period=5)
    summary, (out,) = _run(classifier, source)
    assert [r.frame.index for r in out.results] == list(range(45))
    assert [r.prediction.label for r in out.results] == [LABELS[source.colour_index(i)] for i in range(45)]
    assert summary["frames"] == 45 and summary["dropped"] == 0 and summary["gaps"] == 0
    assert summary["stopped_by"] == "end-of-source"
    assert set(summary["stages_ms"]) == {"capture", "preprocess", "inference", "postprocess", "output"}
    assert all(v >= 0 for v in summary["stages_ms"].values()) and summary["stages_ms"]["inference"] > 0
    assert summary["fps"] > 0 and summary["latency_ms"]["p50"] > 0
    assert out.summary is summary and not source.is_open


def test_live_source_reconnects_and_the_summary_counts_gaps(classifier):
    source = SyntheticSource(fail_after=8, failures=2, reopen_failures=1, fps=400)
    summary, (out,) = _run(classifier, source, max_frames=30)
    assert summary["frames"] == 30 and summary["gaps"] == 2 and summary["gap_s"] > 0
    assert summary["stopped_by"] == "max-frames"
    indices = [r.frame.index for r in out.results]
    assert indices == sorted(indices) and len(set(indices)) == 30
    assert sorted({r.frame.gaps_before for r in out.results}) == [0, 1, 2]
    assert not source.is_open


def test_max_frames_and_duration_bound_a_run(classifier):
    summary, _ = _run(classifier, SyntheticSource(live=False), max_frames=7)
    assert summary["frames"] == 7 and summary["stopped_by"] == "max-frames"
    summary, _ = _run(classifier, SyntheticSource(fps=200), duration=0.3)
    assert summary["stopped_by"] == "duration" and 0.25 <= summary["elapsed_s"] < 3
    assert summary["frames"] > 0


def test_output_can_stop_the_run_like_a_quit_key(classifier):
    summary, (out,) = _run(classifier, SyntheticSource(live=False), [Collect(stop_after=4)])
    assert summary["stopped_by"] == "key" and summary["frames"] == 4 and len(out.results) == 4


def test_external_stop_flushes_the_summary(classifier):
    stop = StopFlag()
    out = Collect()
    threading.Timer(0.2, stop.request, args=("signal SIGTERM",)).start()
    summary = run_loop(classifier, SyntheticSource(fps=300), [out], LoopOptions(), stop, warn=lambda m: None)
    assert summary["stopped_by"] == "signal SIGTERM" and out.summary is summary and summary["frames"] > 0


def test_json_lines_schema(classifier):
    stream = io.StringIO()
    summary, _ = _run(classifier, SyntheticSource(live=False, count=6), [JsonLinesOutput(stream)], top_k=2)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    frames, final = lines[:-1], lines[-1]
    assert len(frames) == 6
    for i, record in enumerate(frames):
        assert record["type"] == "frame" and record["frame"] == i
        assert record["label"] == "red" and 0.9 < record["score"] <= 1.0
        assert isinstance(record["latency_ms"], float) and record["latency_ms"] >= 0
        assert [k["label"] for k in record["top_k"]][0] == "red" and len(record["top_k"]) == 2
        assert list(record["stages_ms"]) == ["capture", "preprocess", "inference", "postprocess", "output"][:len(record["stages_ms"])]
    assert final["type"] == "summary" and final["frames"] == 6
    for key in ("fps", "stages_ms", "gaps", "dropped", "latency_ms", "stopped_by", "runtime", "delegate"):
        assert key in final
    assert final == json.loads(json.dumps(summary))


def test_text_output_lines_and_summary(classifier):
    out, err = io.StringIO(), io.StringIO()
    _run(classifier, SyntheticSource(live=False, count=3), [TextOutput(out, err)], threshold=0.999)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("frame 0  (below threshold: red) 1.00")
    assert err.getvalue().startswith("3 frames at ") and "stopped by end-of-source" in err.getvalue()


def test_record_writes_annotated_video_atomically(classifier, tmp_path):
    target = tmp_path / "out.avi"
    recorder = RecordOutput(target, fps=12.0)
    summary, _ = _run(classifier, SyntheticSource(live=False, count=9, size=(60, 80)), [recorder])
    assert summary["recorded"] == str(target)
    assert [p.name for p in tmp_path.iterdir()] == ["out.avi"]  # no temporary file left
    video = cv2.VideoCapture(str(target))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(12.0)
    frames = []
    while (ok_frame := video.read())[0]:
        frames.append(ok_frame[1])
    video.release()
    assert len(frames) == 9 and frames[0].shape == (60, 80, 3)
    solid = np.full((60, 80, 3), SyntheticSource.COLOURS_BGR[0], np.uint8)
    assert np.abs(frames[0].astype(int) - solid).max() > 100  # the overlay text is drawn on the frame


def test_record_with_no_frames_leaves_no_file(classifier, tmp_path):
    recorder = RecordOutput(tmp_path / "none.avi", fps=10)
    _run(classifier, SyntheticSource(live=False, count=0), [recorder])
    assert list(tmp_path.iterdir()) == []


def test_a_failing_stage_stops_the_run_and_raises_after_the_summary(classifier):
    class OddFrames(SyntheticSource):
        def read(self):
            frame = super().read()
            return None if frame is None else frame[..., :2].copy()  # two channels: not an image

    out = Collect()
    with pytest.raises(DataError, match="camera frame must be an HxWx3 uint8 array"):
        _run(classifier, OddFrames(live=False, count=5), [out])
    assert out.summary is not None and out.summary["stopped_by"] == "error"


def test_bad_postprocess_options(classifier):
    with pytest.raises(RecipeError, match="--smoothing must be in"):
        _run(classifier, SyntheticSource(live=False, count=1), smoothing=1.0)
    with pytest.raises(RecipeError, match="--threshold must be between 0 and 1"):
        _run(classifier, SyntheticSource(live=False, count=1), threshold=2.0)


def test_smoothing_steadies_labels_and_resets_after_a_gap(classifier):
    # Colours switch every frame (period=1); with heavy smoothing the label changes far less often.
    def label_changes(smoothing, **source_args):
        out = Collect()
        _run(classifier, SyntheticSource(period=1, **source_args), [out], smoothing=smoothing, max_frames=30)
        labels = [r.prediction.label for r in out.results]
        return sum(a != b for a, b in zip(labels, labels[1:])), out.results

    raw_changes, _ = label_changes(0.0, live=False)
    smooth_changes, _ = label_changes(0.9, live=False)
    assert raw_changes == 29 and smooth_changes < 10

    # After an outage the average restarts: the first frame after the gap is scored on its own.
    _, results = label_changes(0.9, fail_after=12, fps=500)
    after = next(r for r in results if r.frame.gaps_before == 1)
    assert after.prediction.score > 0.9 and after.prediction.label == LABELS[after.frame.index % 3]


# --- postprocess units ----------------------------------------------------------------------

def test_top_k_orders_and_breaks_ties_by_index():
    scores = np.array([0.1, 0.4, 0.4, 0.05, 0.05], np.float32)
    assert top_k(scores, 3).tolist() == [1, 2, 0]
    assert top_k(scores, 10).tolist() == [1, 2, 0, 3, 4]
    assert top_k(scores, 1).tolist() == [1] and top_k(scores[::-1].copy(), 1).tolist() == [2]


def test_predict_threshold():
    scores = np.array([0.2, 0.7, 0.1], np.float32)
    p = predict(scores, LABELS, k=2, threshold=0.5)
    assert (p.label, p.index, p.top_k[1][0]) == ("green", 1, "red")
    below = predict(scores, LABELS, threshold=0.8)
    assert below.label is None and below.index is None and below.score == pytest.approx(0.7)


def test_ema_smoother():
    ema = EmaSmoother(0.5)
    assert ema(np.array([1.0, 0.0])).tolist() == [1.0, 0.0]
    assert ema(np.array([0.0, 1.0])).tolist() == [0.5, 0.5]
    ema.reset()
    assert ema(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    off = EmaSmoother(0.0)
    assert off(np.array([0.3, 0.7])).tolist() == pytest.approx([0.3, 0.7])
