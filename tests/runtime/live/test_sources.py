"""Frame sources, the source-string parser, hand-off channels and the capture thread."""

import importlib.util
import threading
import time

import cv2
import numpy as np
import pytest

from edgecnn.errors import EdgecnnError, RuntimeUnavailable, SourceError
from edgecnn.runtime.live.capture import Backoff, CaptureThread
from edgecnn.runtime.live.channels import END, Fifo, LatestSlot
from edgecnn.runtime.live.sources import ImageFolderSource, OpenCVSource, Picamera2Source, SyntheticSource, parse_source


def make_video(path, frames=12, size=(64, 48), fps=25.0):
    """An MJPG clip whose frame i is a solid grey of level 10 * i (so order is checkable)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 10 * i, np.uint8))
    writer.release()
    return path


def drain(channel):
    items = []
    while (item := channel.get()) is not END:
        items.append(item)
    return items


# --- parse_source ---------------------------------------------------------------------------

def test_parse_source_forms(tmp_path):
    video = make_video(tmp_path / "clip.avi")
    (tmp_path / "imgs").mkdir()
    cv2.imwrite(str(tmp_path / "imgs" / "a.png"), np.zeros((4, 4, 3), np.uint8))
    cam = parse_source("0")
    assert isinstance(cam, OpenCVSource) and cam.kind == "camera" and cam.target == 0 and cam.live
    stream = parse_source("rtsp://admin:secret@cam.local/stream")
    assert stream.kind == "stream" and stream.live and "secret" not in stream.describe()
    assert parse_source("http://cam.local/video.mjpg").kind == "stream"
    clip = parse_source(str(video))
    assert clip.kind == "file" and not clip.live
    folder = parse_source(str(tmp_path / "imgs"))
    assert isinstance(folder, ImageFolderSource) and len(folder.paths) == 1
    assert isinstance(parse_source("picamera2"), Picamera2Source)


def test_parse_source_errors(tmp_path):
    with pytest.raises(SourceError, match=r"unknown source 'webcam'; give a camera index \(0\), a V4L2 device"):
        parse_source("webcam")
    with pytest.raises(SourceError, match=r"source file .*missing.mp4 does not exist"):
        parse_source(str(tmp_path / "missing.mp4"))
    with pytest.raises(SourceError, match=r"camera device /dev/video99 does not exist"):
        parse_source("/dev/video99")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"folder .*empty has no images"):
        parse_source(str(tmp_path / "empty"))


def test_camera_that_cannot_open_lists_what_was_tried():
    with pytest.raises(SourceError, match=r"cannot open camera 7 \(tried V4L2, any backend\); check it is connected"):
        OpenCVSource(7, "camera").open()


def test_unreadable_video_file(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match=r"cannot open .*bad.mp4 \(tried any backend\); the container or codec"):
        parse_source(str(bad)).open()


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is not None,
                    reason="picamera2 is installed here: test_installed_picamera2_opens_or_names_the_problem runs")
def test_picamera2_absent_says_how_to_install():
    with pytest.raises(RuntimeUnavailable, match="picamera2 is not installed; on Raspberry Pi OS run 'sudo apt install python3-picamera2'"):
        Picamera2Source().open()


@pytest.mark.skipif(importlib.util.find_spec("picamera2") is None, reason="picamera2 is not installed (Raspberry Pi OS)")
def test_installed_picamera2_opens_or_names_the_problem():
    source = Picamera2Source()
    try:
        source.open()
    except EdgecnnError as exc:  # no camera attached: a one-line error, not a traceback from libcamera
        assert "\n" not in str(exc)
    else:
        try:
            frame = source.read()
        finally:
            source.release()
        assert frame is not None and frame.ndim == 3


def test_video_file_frames_in_order(tmp_path):
    source = OpenCVSource(str(make_video(tmp_path / "c.avi", frames=5)), "file")
    source.open()
    assert source.fps == pytest.approx(25.0)
    levels = []
    while (frame := source.read()) is not None:
        levels.append(int(frame.mean()))
    source.release()
    assert len(levels) == 5 and all(abs(level - 10 * i) <= 3 for i, level in enumerate(levels))


def test_image_folder_skips_undecodable_images(tmp_path):
    for name, value in (("a.png", 10), ("c.png", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((4, 4, 3), value, np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"garbage")
    warnings = []
    source = ImageFolderSource.from_folder(tmp_path, warn=warnings.append)
    source.open()
    frames = [source.read(), source.read(), source.read()]
    assert [int(f[0, 0, 0]) for f in frames[:2]] == [10, 30] and frames[2] is None
    assert source.skipped == 1 and "b.jpg" in warnings[0]


# --- channels ---------------------------------------------------------------------------------

def test_latest_slot_keeps_newest_and_counts_drops():
    slot = LatestSlot(threading.Event())
    for i in range(5):
        slot.put(i)
    assert slot.get() == 4 and slot.dropped == 4
    slot.put(5)
    slot.close()
    assert drain(slot) == [5]


def test_fifo_is_in_order_and_blocks_when_full():
    stop = threading.Event()
    fifo = Fifo(stop, maxsize=2)
    assert fifo.put(1) and fifo.put(2)
    blocked = threading.Thread(target=fifo.put, args=(3,))
    blocked.start()
    time.sleep(0.1)
    assert blocked.is_alive()  # back-pressure: the producer waits instead of dropping
    assert fifo.get() == 1
    blocked.join(1)
    fifo.close()
    assert drain(fifo) == [2, 3] and fifo.dropped == 0


def test_fifo_put_gives_up_when_stopped():
    stop = threading.Event()
    fifo = Fifo(stop, maxsize=1)
    fifo.put(1)
    stop.set()
    assert fifo.put(2) is False


# --- capture thread -------------------------------------------------------------------------

def _capture(source, channel_cls=Fifo, **kwargs):
    stop = threading.Event()
    channel = channel_cls(stop) if channel_cls is LatestSlot else channel_cls(stop, maxsize=1000)
    warnings = []
    source.open()
    thread = CaptureThread(source, channel, stop, warn=warnings.append,
                           backoff=Backoff(initial_s=0.001, maximum_s=0.004), **kwargs)
    return thread, channel, stop, warnings


def test_capture_reconnects_a_live_source_and_counts_gaps():
    source = SyntheticSource(fail_after=5, failures=2, reopen_failures=2)
    thread, channel, stop, warnings = _capture(source)
    thread.start()
    frames = []
    while len(frames) < 15:
        frames.append(channel.get())
    stop.set()
    thread.join(2)
    assert [f.index for f in frames] == list(range(15))
    assert [f.gaps_before for f in frames] == [0] * 5 + [1] * 5 + [2] * 5
    assert thread.stats.gaps == 2
    assert source.refused_opens == 4 and source.opens == 3  # two refusals per outage, then success
    assert thread.stats.reconnect_attempts == 6
    assert any("stopped delivering frames; reconnecting" in w for w in warnings)
    assert any("reconnected after" in w for w in warnings)
    assert not source.is_open  # released on stop


def test_capture_ends_a_file_and_loops_with_loop(tmp_path):
    video = str(make_video(tmp_path / "c.avi", frames=4))
    thread, channel, _, _ = _capture(OpenCVSource(video, "file"))
    thread.start()
    assert [f.index for f in drain(channel)] == [0, 1, 2, 3]
    thread.join(2)
    assert thread.stats.ended and thread.stats.gaps == 0

    thread, channel, stop, _ = _capture(OpenCVSource(video, "file"), loop=True)
    thread.start()
    frames = [channel.get() for _ in range(10)]
    stop.set()
    thread.join(2)
    levels = [int(f.image.mean()) for f in frames]
    assert abs(levels[4] - levels[0]) <= 3 and abs(levels[8] - levels[0]) <= 3  # back to the first frame
    assert thread.stats.loops >= 2


def test_live_source_newest_frame_policy_drops_stale_frames():
    source = SyntheticSource(fps=1000)
    thread, slot, stop, _ = _capture(source, LatestSlot)
    thread.start()
    deadline = time.monotonic() + 10
    while source.delivered < 20 and time.monotonic() < deadline:  # a slow consumer: the camera keeps going
        time.sleep(0.005)
    frame = slot.get()
    stop.set()
    thread.join(2)
    assert frame.index >= 18  # the newest frame, not the first one
    assert slot.dropped >= frame.index  # every older frame was replaced, none queued


def test_realtime_paces_a_file_at_its_frame_rate(tmp_path):
    video = str(make_video(tmp_path / "c.avi", frames=10, fps=50.0))
    thread, channel, _, _ = _capture(OpenCVSource(video, "file"), realtime=True)
    started = time.perf_counter()
    thread.start()
    frames = drain(channel)
    elapsed = time.perf_counter() - started
    assert len(frames) == 10
    assert elapsed >= 9 / 50.0 * 0.9  # ten frames at 50 FPS span at least 0.18 s


def test_file_read_error_is_reported_not_swallowed():
    class Exploding(SyntheticSource):
        def read(self):
            raise OSError("disk went away")

    thread, channel, _, _ = _capture(Exploding(live=False))
    thread.start()
    thread.join(2)
    assert drain(channel) == []
    assert isinstance(thread.error, SourceError) and "disk went away" in str(thread.error)
