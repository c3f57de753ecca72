"""`edgecnn run --explain`: the class activation map, from the classification's own invoke, blended into the
overlay and the recording, where the evidence really is, without TensorFlow.

The model (tests/tflite_models.py) is ``AVERAGE_POOL_2D -> FULLY_CONNECTED(gain * identity) -> SOFTMAX``: its
final feature map is the normalized input, so the CAM of class "green" is bright exactly where the frame is
green. The clip is a green square moving over a grey 640x480 frame. Green and grey both have red = blue, so
in a recording without the heatmap the red-minus-blue "hotness" below is flat: only JET's red end (hot) can
make it peak, and it must peak on the square, frame after frame.
"""

import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tflite_models import write_model

from edgecnn.cli import cli
from edgecnn.runtime.explain.live import ALPHA, CamBlender, CamClassifier
from edgecnn.runtime.live.loop import LoopOptions, run_loop
from edgecnn.runtime.live.overlay import annotated
from edgecnn.runtime.live.sources import parse_source

WIDTH, HEIGHT, SQUARE = 640, 480, 120
GREEN_BGR, GREY = (30, 200, 30), 128
# Top-left corners, well below the overlay's text lines (top ~60 rows) and spread over the frame.
CORNERS = [(100, 40), (100, 480), (330, 40), (330, 480), (200, 260), (340, 250)]


def _frame(top, left):
    frame = np.full((HEIGHT, WIDTH, 3), GREY, np.uint8)
    frame[top:top + SQUARE, left:left + SQUARE] = GREEN_BGR
    return frame


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("live_explain")
    path = root / "moving.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (WIDTH, HEIGHT))
    for corner in CORNERS:
        writer.write(_frame(*corner))
    writer.release()
    return path


@pytest.fixture(params=["float", "int8"])
def model(request, tmp_path):
    return write_model(tmp_path / f"{request.param}.tflite", kind=request.param, height=32, width=32)


def _read_video(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _hottest(recorded, original):
    """(row, col, hotness) where the blended heatmap is hottest: the colour layer recovered from the
    blend, red minus blue (JET runs blue -> red), smoothed, the text band at the top left out."""
    colour = (recorded.astype(np.float32) - (1 - ALPHA) * original.astype(np.float32)) / ALPHA
    hot = cv2.blur(colour[..., 2] - colour[..., 0], (31, 31))
    hot[:70] = -np.inf
    row, col = np.unravel_index(np.argmax(hot), hot.shape)
    return int(row), int(col), float(hot[row, col])


# Peak hotness, measured on this clip: 130-173 with --explain (float and int8), 3.2-4.6 without it (JPEG
# noise, whose argmax also tends to fall on the square's edges, so the place alone would not tell).
MIN_PEAK = 60


PROBE = textwrap.dedent("""
    import sys
    from edgecnn.cli import cli
    cli.main(args={args!r}, prog_name="edgecnn", standalone_mode=False)
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras")))
""")


def test_recorded_heatmap_follows_the_evidence_and_imports_no_tensorflow(clip, model, tmp_path):
    out = tmp_path / "explained.avi"
    args = ["run", str(model), "--source", str(clip), "--headless", "--record", str(out), "--explain"]
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"  # no TensorFlow, Keras or tf_keras module was loaded
    seen, recorded = _read_video(clip), _read_video(out)
    assert len(recorded) == len(seen) == len(CORNERS)
    peaks = []
    for (top, left), original, frame in zip(CORNERS, seen, recorded):
        row, col, peak = _hottest(frame, original)
        assert peak >= MIN_PEAK and top <= row < top + SQUARE and left <= col < left + SQUARE, (top, left, row, col, peak)
        peaks.append((row, col))
    assert len(set(peaks)) == len(CORNERS)  # the peak moved with the square


def test_without_explain_the_same_measure_finds_no_heat(clip, model, tmp_path):
    """The control: the same recording without --explain has nothing hot (so the test above sees the
    heatmap, not the green square itself)."""
    out = tmp_path / "plain.avi"
    result = CliRunner().invoke(cli, ["run", str(model), "--source", str(clip), "--headless", "--record", str(out)])
    assert result.exit_code == 0, result.output
    for original, frame in zip(_read_video(clip), _read_video(out)):
        assert _hottest(frame, original)[2] < MIN_PEAK


class _CountingInterpreter:
    """The classifier's interpreter with its invokes counted."""

    def __init__(self, interpreter):
        self._interpreter, self.invokes = interpreter, 0

    def invoke(self):
        self.invokes += 1
        return self._interpreter.invoke()

    def __getattr__(self, name):
        return getattr(self._interpreter, name)


class _Keep:
    def __init__(self):
        self.results = []

    def write(self, result):
        annotated(result)
        self.results.append(result)
        return True

    def close(self, summary):
        self.summary = summary


@pytest.mark.parametrize("mode", ["inline", "pipeline"])
def test_one_invoke_per_frame_gives_both_the_scores_and_the_map(clip, model, mode):
    classifier = CamClassifier(model, threads=1)
    counting = _CountingInterpreter(classifier.interpreter)
    classifier.interpreter = counting
    keep = _Keep()
    run_loop(classifier, parse_source(str(clip)), [keep], LoopOptions(mode=mode))
    assert counting.invokes == len(keep.results) == len(CORNERS)
    for result, (top, left) in zip(keep.results, CORNERS):
        assert result.prediction.label == "green" and result.cam.class_index == 1
        # The map travelled with its own frame (pipelined, the worker is a frame ahead): its peak is on the square.
        row, col = np.unravel_index(np.argmax(result.cam.raw), result.cam.raw.shape)
        assert top <= (row + 0.5) * HEIGHT / 32 < top + SQUARE and left <= (col + 0.5) * WIDTH / 32 < left + SQUARE


def test_blend_is_in_place_and_reuses_its_buffer():
    blender = CamBlender()
    image = np.full((HEIGHT, WIDTH, 3), GREY, np.uint8)
    raw = np.zeros((3, 3), np.float32)
    raw[2, 0] = 1.0  # hot at the bottom left
    out = blender.blend_into(image, raw)
    assert out is image
    buffer = blender._colour
    blender.blend_into(image, raw)
    assert blender._colour is buffer  # allocated once
    corner, opposite = image[-1, 0].astype(int), image[0, -1].astype(int)
    assert corner[2] > corner[0] and opposite[0] > opposite[2]  # red (hot) bottom left, blue (cold) top right


def test_explain_refuses_a_model_without_a_cam_head_in_one_line(clip, tmp_path):
    from test_explain_tflite import _no_head_model

    path = _no_head_model(tmp_path / "nohead.tflite")
    result = CliRunner().invoke(cli, ["run", str(path), "--source", str(clip), "--headless", "--explain"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1].startswith(
        f"Error: --explain needs a global-pooling + dense head for its class activation map, and {path} has none "
        "(its output is not made by a dense layer (found AVERAGE_POOL_2D)); occlusion is too slow")


def test_explain_without_a_place_to_show_it_warns(clip, model):
    result = CliRunner().invoke(cli, ["run", str(model), "--source", str(clip), "--headless", "--explain"])
    assert result.exit_code == 0, result.output
    assert "Warning: --explain draws on the window or the --record video" in result.stderr


def test_explain_every_n_frames_recolours_only_every_nth_frame():
    blender = CamBlender(refresh=3)
    hot_left, hot_right = np.zeros((3, 3), np.float32), np.zeros((3, 3), np.float32)
    hot_left[1, 0], hot_right[1, 2] = 1.0, 1.0
    colours = []
    for raw in (hot_left, hot_right, hot_right, hot_right):  # frames 0..3: recoloured at 0 and 3
        blender.blend_into(np.full((HEIGHT, WIDTH, 3), GREY, np.uint8), raw)
        colours.append(blender._colour.copy())
    assert np.array_equal(colours[0], colours[1]) and np.array_equal(colours[1], colours[2])  # lagging, as said
    assert colours[3][HEIGHT // 2, -1, 2] > colours[3][HEIGHT // 2, 0, 2]  # frame 3 shows the right-hand map
    result = CliRunner().invoke(cli, ["run", "m.tflite", "--explain", "--explain-every", "0"])
    assert result.exit_code == 2 and "--explain-every" in result.output
