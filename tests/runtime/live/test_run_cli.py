"""`edgecnn run`, `classify` and `doctor` through the CLI: outputs, bad input, clean shutdown."""

import ctypes.util
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tflite_models import build_classifier, with_metadata, write_model

from edgecnn.cli import cli

RED, GREEN, BLUE = (0, 0, 220), (0, 220, 0), (220, 0, 0)  # BGR


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    clip = root / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
    for i in range(30):  # 10 red, 10 green, 10 blue frames
        writer.write(np.full((48, 64, 3), (RED, GREEN, BLUE)[i // 10], np.uint8))
    writer.release()
    photos = root / "photos"
    (photos / "sub").mkdir(parents=True)
    cv2.imwrite(str(photos / "a_red.png"), np.full((20, 20, 3), RED, np.uint8))
    cv2.imwrite(str(photos / "sub" / "b_blue.jpg"), np.full((20, 20, 3), BLUE, np.uint8))
    (photos / "broken.jpg").write_bytes(b"not really a jpeg")
    mismatch = root / "mismatch.tflite"
    mismatch.write_bytes(with_metadata(build_classifier(classes=3), ["a", "b"], 8, 8))
    corrupt = root / "corrupt.tflite"
    corrupt.write_bytes(build_classifier()[:200])  # truncated in transfer
    labels4 = root / "labels4.txt"
    labels4.write_text("a\nb\nc\nd\n")
    return {"model": write_model(root / "m_int8.tflite", kind="int8"), "clip": clip, "photos": photos,
            "mismatch": mismatch, "corrupt": corrupt, "labels4": labels4, "root": root}


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_run_video_headless_json(files):
    result = invoke("run", files["model"], "--source", files["clip"], "--headless", "--json", "--top-k", "2")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    frames, summary = lines[:-1], lines[-1]
    assert [f["frame"] for f in frames] == list(range(30))
    assert [f["label"] for f in frames] == ["red"] * 10 + ["green"] * 10 + ["blue"] * 10
    assert all({"frame", "label", "score", "latency_ms", "top_k"} <= set(f) for f in frames)
    assert summary["type"] == "summary" and summary["frames"] == 30 and summary["stopped_by"] == "end-of-source"
    assert summary["fps"] > 0 and summary["stages_ms"]["inference"] > 0 and summary["gaps"] == 0
    assert summary["mode"] == "inline" and summary["mode_reason"]  # 30 frames: still in the inline probe


def test_run_mode_can_be_forced(files):
    result = invoke("run", files["model"], "--source", files["clip"], "--headless", "--json", "--mode", "pipeline")
    assert result.exit_code == 0, result.output
    lines = json_lines(result.stdout)
    assert [f["frame"] for f in lines[:-1]] == list(range(30))
    assert lines[-1]["mode"] == "pipeline" and lines[-1]["mode_reason"] == "asked for (pipeline)"
    result = invoke("run", files["model"], "--source", files["clip"], "--headless", "--mode", "sideways")
    assert result.exit_code == 2 and "sideways" in result.output


def test_run_max_frames_and_text_output(files):
    result = invoke("run", files["model"], "--source", files["clip"], "--headless", "--max-frames", "5")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0].startswith("frame 0  red 1.00")
    assert len(result.stdout.splitlines()) == 5
    assert "5 frames at" in result.stderr and "stopped by max-frames" in result.stderr


def test_run_image_folder_skips_broken_images(files):
    result = invoke("run", files["model"], "--source", files["photos"], "--headless", "--json")
    assert result.exit_code == 0
    lines = json_lines(result.stdout)
    assert [(Path(f["file"]).name, f["label"]) for f in lines[:-1]] == [("a_red.png", "red"), ("b_blue.jpg", "blue")]
    assert lines[-1]["skipped"] == 1
    assert "Warning: skipping cannot decode image" in result.stderr and "broken.jpg" in result.stderr


def test_run_record_writes_annotated_video(files, tmp_path):
    target = tmp_path / "annotated.avi"
    result = invoke("run", files["model"], "--source", files["clip"], "--headless", "--record", target, "--max-frames", "12")
    assert result.exit_code == 0, result.output
    video = cv2.VideoCapture(str(target))
    fps = video.get(cv2.CAP_PROP_FPS)
    count = 0
    while video.read()[0]:
        count += 1
    video.release()
    assert count == 12 and fps == pytest.approx(20.0)  # the clip's own frame rate
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.avi"]


def test_run_window_without_display_says_use_headless(files, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    result = invoke("run", files["model"], "--source", files["clip"])
    assert result.exit_code == 2
    assert result.output.startswith("Error: no display to show the window on") and "use --headless" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["run", "{root}/missing.tflite", "--headless"], "Error: model file {root}/missing.tflite does not exist"),
    (["run", "{corrupt}", "--headless"], "is a corrupt or truncated TFLite file"),
    (["run", "{mismatch}", "--headless"], "outputs 3 scores but its metadata name 2 classes"),
    (["run", "{model}", "--headless", "--labels", "{labels4}"], "outputs 3 scores but the given labels name 4 classes"),
    (["run", "{model}", "--headless", "--source", "webcam"], "Error: unknown source 'webcam'"),
    (["run", "{model}", "--headless", "--source", "/dev/video42"], "Error: camera device /dev/video42 does not exist"),
    (["run", "{model}", "--headless", "--source", "7"], "Error: cannot open camera 7 (tried V4L2, any backend)"),
    (["run", "{model}", "--headless", "--delegate", "edgetpu"], "Error: Edge TPU delegate unavailable: libedgetpu.so.1 is not installed"),
    (["run", "{model}", "--headless", "--record", "{root}/no/such/dir/out.avi"], "folder {root}/no/such/dir does not exist"),
    (["run", "{model}", "--headless", "--record", "{root}/out.gif"], "cannot record to {root}/out.gif"),
    (["run", "{model}", "--headless", "--mean", "abc"], "--mean 'abc' is not a number"),
    (["run", "{model}", "--headless", "--channel-order", "GRAY"], "does not fit a 3-channel input"),
    (["classify", "{model}", "{root}/nope.jpg"], "Error: {root}/nope.jpg does not exist"),
])
def test_bad_input_is_one_line_error(files, args, message):
    values = {k: str(v) for k, v in files.items()}
    result = invoke(*[a.format(**values) for a in args])
    assert result.exit_code == 2, result.output
    assert message.format(**values) in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.skipif(ctypes.util.find_library("edgetpu") is not None, reason="libedgetpu is installed here: the "
                    "fallback is for hosts without it (tests/runtime/test_interpreter.py runs the real library)")
def test_edgetpu_fallback_cpu_warns_and_runs(files):
    result = invoke("run", files["model"], "--source", files["clip"], "--headless", "--json", "--max-frames", "2",
                    "--delegate", "edgetpu", "--device", "usb:0", "--fallback", "cpu")
    assert result.exit_code == 0
    assert "Warning: Edge TPU delegate unavailable: libedgetpu.so.1 is not installed" in result.stderr
    assert "running on the CPU instead (--fallback cpu)" in result.stderr
    assert json_lines(result.stdout)[-1]["delegate"] == "cpu"


def test_classify_files_and_folders(files):
    result = invoke("classify", files["model"], files["photos"], "--json", "--top-k", "3")
    assert result.exit_code == 0
    rows = json_lines(result.stdout)
    assert [(Path(r["path"]).name, r["label"]) for r in rows] == [("a_red.png", "red"), ("b_blue.jpg", "blue")]
    assert len(rows[0]["top_k"]) == 3
    assert "Warning: skipping cannot decode image" in result.stderr
    assert "1 of 3 image(s) skipped" in result.stderr

    text = invoke("classify", files["model"], files["photos"] / "a_red.png")
    assert text.exit_code == 0 and text.stdout.strip().endswith("\tred 0.996")


def test_classify_only_broken_images_fails(files):
    result = invoke("classify", files["model"], files["photos"] / "broken.jpg")
    assert result.exit_code == 2
    assert "Error: none of the 1 image(s) could be decoded" in result.output


def test_doctor_reports_runtime_and_absences():
    result = invoke("doctor")
    assert result.exit_code == 0
    report = json.loads(invoke("doctor", "--json").stdout)
    assert report["runtime"] == "ai_edge_litert" and "runtime     ai_edge_litert" in result.stdout
    # What is there, asked independently of edgecnn: the loader's cache for libedgetpu (and LiteRT's own
    # load_delegate for a Coral behind it), Python's import system for picamera2.
    edgetpu = ctypes.util.find_library("edgetpu") is not None
    if edgetpu:
        from ai_edge_litert.interpreter import load_delegate

        try:
            load_delegate("libedgetpu.so.1")
        except ValueError:
            edgetpu = False  # the library, but no Coral to open
    assert report["delegates"]["edgetpu"]["available"] is edgetpu
    assert ("edgetpu  fails" in result.stdout) is not edgetpu
    assert report["cameras"]["picamera2"] is (importlib.util.find_spec("picamera2") is not None)
    assert isinstance(report["cameras"]["v4l2_devices"], list)


def test_sigterm_stops_cleanly_and_flushes_the_summary(files):
    edgecnn = Path(sys.executable).with_name("edgecnn")
    process = subprocess.Popen([str(edgecnn), "run", str(files["model"]), "--source", str(files["clip"]), "--loop",
                                "--headless", "--json", "--realtime"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    try:
        first = process.stdout.readline()  # the loop is running once a frame line appears
        assert json.loads(first)["type"] == "frame"
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["type"] == "summary" and summary["stopped_by"] == "signal SIGTERM"
    assert summary["frames"] >= 2 and "Traceback" not in err


def test_failed_start_leaves_no_partial_recording(files, tmp_path):
    result = invoke("run", files["model"], "--source", "7", "--headless", "--record", tmp_path / "never.avi")
    assert result.exit_code == 2 and "cannot open camera 7" in result.output
    assert list(tmp_path.iterdir()) == []
