"""Live-source faults without a server: read errors, the backoff's real waits, outage accounting,
truncated video files, --source-timeout checks, and a recording ended by a real SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tflite_models import write_model

from edgecnn.cli import cli
from edgecnn.errors import SourceError
from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.live.capture import Backoff, Capturer
from edgecnn.runtime.live.loop import LoopOptions, run_loop
from edgecnn.runtime.live.outages import Outages
from edgecnn.runtime.live.outputs import format_summary
from edgecnn.runtime.live.sources import SyntheticSource
from edgecnn.runtime.live.video_files import mp4_top_level_boxes

COLOURS = ((0, 0, 220), (0, 220, 0), (220, 0, 0))  # BGR: red, green, blue


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("faults") / "m_int8.tflite", kind="int8")


class Collect:
    def __init__(self):
        self.results, self.summary = [], None

    def write(self, result):
        self.results.append(result)
        return True

    def close(self, summary):
        self.summary = summary


class FlakySource(SyntheticSource):
    """A live source whose read raises on the given read numbers (0-based), like a driver error."""

    def __init__(self, raise_on, exc=OSError("VIDIOC_DQBUF: No such device"), **kwargs):
        super().__init__(**kwargs)
        self.raise_on, self.exc, self.reads = set(raise_on), exc, 0

    def read(self):
        n, self.reads = self.reads, self.reads + 1
        if n in self.raise_on:
            raise self.exc
        return super().read()


@pytest.mark.parametrize("exc", [OSError("VIDIOC_DQBUF: No such device"), cv2.error("decoder lost"),
                                 RuntimeError("camera frontend timeout")])
def test_read_errors_raised_by_a_live_source_are_retried_not_fatal(model, exc):
    classifier = TFLiteClassifier(model, threads=1)
    source = FlakySource(raise_on={5, 6, 12}, exc=exc, fps=400)
    warnings, out = [], Collect()
    summary = run_loop(classifier, source, [out], LoopOptions(max_frames=20, backoff=Backoff(0.001, 0.004)),
                       warn=warnings.append)
    assert summary["stopped_by"] == "max-frames" and summary["frames"] == 20
    assert summary["read_errors"] == 3 and summary["gaps"] == 3 and source.opens == 4  # reopened each time
    assert source.delivered >= 20  # the frames after the errors are new frames from the source
    assert sum(f"read failed: {exc}" in w and "reconnecting" in w for w in warnings) == 3


def test_backoff_waits_between_reopen_attempts_follow_the_schedule():
    class Refusing(SyntheticSource):
        def __init__(self):
            super().__init__(fail_after=3, reopen_failures=4)
            self.open_times = []

        def open(self):
            self.open_times.append(time.perf_counter())
            super().open()

    source = Refusing()
    source.open()
    stop = threading.Event()
    capturer = Capturer(source, stop, backoff=Backoff(initial_s=0.03, maximum_s=0.12), warn=lambda m: None)
    for _ in range(4):  # three frames, then the outage and four refused reopens, then a frame again
        assert capturer.next_frame() is not None
    waits = np.diff(source.open_times)  # attempts 1..5 after the first open
    schedule = [0.06, 0.12, 0.12, 0.12]  # 0.03 doubling, at most 0.12: gaps between attempts 1-2, 2-3 ...
    # Each gap is the scheduled wait plus a refused open (microseconds). Measured (10 runs, load 5-7):
    # gap - schedule = 0.0001-0.004 s; 0.1 s allows a busy machine. A constant delay fails the lower bound.
    assert capturer.stats.reconnect_attempts == 5 and len(waits) == 5
    for gap, scheduled in zip(waits[1:], schedule):
        assert scheduled <= gap <= scheduled + 0.1, (waits, schedule)


def test_outages_count_the_frames_a_steady_source_missed():
    outages, period = Outages(), 0.05
    arrivals = [i * period + (0.01 if i % 3 == 0 else 0.0) for i in range(20)]  # frames 0-19, some late
    resumed = [i * period + 0.02 * (i < 45) for i in range(43, 60)]  # 23 frames (20-42) never came
    for t in arrivals:
        outages.frame(t)
    outages.outage()
    for t in resumed:
        outages.frame(t)
    report = outages.summary()
    assert report["frames_lost"] == 23 and report["reconnects"] == 1
    assert report["gap_s"] == pytest.approx(resumed[0] - arrivals[-1], abs=1e-9)
    assert report["source_fps_measured"] == pytest.approx(20.0, rel=0.01)
    outages.outage()
    outages.end(resumed[-1] + 1.0)  # the run ended while the source was away: a second of frames lost
    assert outages.summary()["frames_lost"] == 23 + 20


def test_text_summary_names_the_stream_counts():
    summary = {"frames": 40, "fps": 19.9, "stages_ms": {"inference": 0.1}, "latency_ms": {"p50": 1.0},
               "gaps": 1, "gap_s": 1.6, "dropped": 0, "skipped": 0, "loops": 0, "reconnects": 1, "frames_lost": 31,
               "corrupt_frames": 2, "read_errors": 0, "stalls": 1, "stopped_by": "duration",
               "file_frames": {"read": 8, "announced": 30}}
    text = format_summary(summary)
    assert "1 gaps (1.6 s without frames)" in text and "1 reconnects, 31 frames_lost, 2 corrupt_frames" in text
    assert "1 stalls" in text and "read_errors" not in text and "file ended after 8 of 30 frames" in text


# --- video files cut short ------------------------------------------------------------------

def write_clip(path, fourcc, frames=30):
    """Coloured frames with noise, so that frames, not headers, make up most of the file (as in a real clip)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 20.0, (64, 48))
    noise = np.random.default_rng(0)
    for i in range(frames):
        base = np.full((48, 64, 3), COLOURS[(i // 10) % 3], np.int16)
        writer.write(np.clip(base + noise.integers(-30, 30, base.shape), 0, 255).astype(np.uint8))
    writer.release()
    return path


def cut(path, fraction):
    data = path.read_bytes()
    target = path.with_name(f"cut-{path.name}")
    target.write_bytes(data[: int(len(data) * fraction)])
    return target


def frames_in(path):
    video, count = cv2.VideoCapture(str(path)), 0
    while video.read()[0]:
        count += 1
    video.release()
    return count


def test_truncated_avi_ends_with_a_warning_saying_how_many_frames_it_held(model, tmp_path):
    clip = cut(write_clip(tmp_path / "clip.avi", "MJPG"), 0.4)
    really = frames_in(clip)  # what OpenCV can read from the cut file, counted here
    assert 0 < really < 30
    result = CliRunner().invoke(cli, ["run", str(model), "--source", str(clip), "--headless", "--json"])
    assert result.exit_code == 0, result.output  # the frames it had were classified; the warning says the rest
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["frames"] == really and summary["file_frames"] == {"read": really, "announced": 30}
    assert (f"Warning: {clip} ended after {really} of the 30 frames its container announces; the file is "
            "truncated or damaged") in result.stderr
    whole = CliRunner().invoke(cli, ["run", str(model), "--source", str(tmp_path / "clip.avi"), "--headless"])
    assert whole.exit_code == 0 and "ended after" not in whole.stderr and "file ended" not in whole.stderr


def test_truncated_avi_warns_once_when_looping(model, tmp_path):
    clip = cut(write_clip(tmp_path / "clip.avi", "MJPG"), 0.4)
    result = CliRunner().invoke(cli, ["run", str(model), "--source", str(clip), "--headless", "--loop",
                                      "--max-frames", 40])
    assert result.exit_code == 0 and result.stderr.count("its container announces") == 1


@pytest.mark.parametrize("fraction", [0.3, 0.7, 0.97])  # into the frames, into the index, its last bytes
def test_truncated_mp4_is_a_one_line_error_naming_the_missing_index(model, tmp_path, fraction):
    whole = write_clip(tmp_path / "clip.mp4", "mp4v")
    assert mp4_top_level_boxes(whole)[-1] == ("moov", True)  # OpenCV writes the index last: any cut loses it
    clip = cut(whole, fraction)
    result = CliRunner().invoke(cli, ["run", str(model), "--source", str(clip), "--headless"])
    assert result.exit_code == 2
    assert result.output.strip() == (f"Error: cannot open {clip}: its 'moov' index is missing or cut, so the "
                                     "file was cut short (an interrupted recording or copy?) and its frames cannot be "
                                     "located; record or copy it again")


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "1e9", "soon"])
def test_source_timeout_must_be_a_finite_positive_number(model, value):
    result = CliRunner().invoke(cli, ["run", str(model), "--headless", "--source-timeout", value])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("Error: --source-timeout must be a finite number in (0, 3600], got ")


def test_source_timeout_reaches_the_stream_source():
    from edgecnn.runtime.live.sources import parse_source

    source = parse_source("http://127.0.0.1:9/none", timeout_s=0.25)
    assert source.timeout_s == 0.25 and parse_source("rtsp://cam.local/s").timeout_s == 5.0  # the default
    started = time.perf_counter()
    with pytest.raises(SourceError, match="cannot open http://127.0.0.1:9/none"):
        source.open()  # port 9 refuses at once: no timeout to wait for
    assert time.perf_counter() - started < 5


# --- SIGTERM while recording ----------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_sigterm_while_recording_leaves_a_playable_file(model, tmp_path, suffix):
    clip = write_clip(tmp_path / "clip.avi", "MJPG")
    target = tmp_path / f"out{suffix}"
    process = subprocess.Popen([sys.executable, "-m", "edgecnn", "run", str(model), "--source", str(clip), "--loop",
                                "--realtime", "--headless", "--json", "--record", str(target)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        for _ in range(15):  # mid-run: 15 frames written at the clip's 20 FPS
            assert json.loads(process.stdout.readline())["type"] == "frame"
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["stopped_by"] == "signal SIGTERM" and summary["recorded"] == str(target)
    video = cv2.VideoCapture(str(target))
    assert video.isOpened()
    count = 0
    while True:
        ok, image = video.read()
        if not ok:
            break
        count += 1
        assert image.shape == (48, 64, 3)
    video.release()
    assert count >= 15 and count == summary["recorded_frames"] == summary["frames"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["clip.avi", target.name])  # no temporary left
