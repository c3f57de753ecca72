"""``edgecnn run`` (live classifier) and ``edgecnn classify`` (still images).

Device-half commands: they import numpy, OpenCV and LiteRT inside the command bodies and
never TensorFlow. The work is done by ``edgecnn.runtime``; this module only turns flags into
calls and prints.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading

import click

from edgecnn.cli.options import ChannelValues, Finite
from edgecnn.errors import DataError

_DELEGATES = ("cpu", "edgetpu", "gpu")


def model_options(func):
    """Flags shared by run and classify: runtime, delegate, and preprocessing for models without metadata."""
    options = [
        click.option("--threads", type=click.IntRange(min=1), default=None,
                     help="Interpreter threads (default: all cores, at most 4)."),
        click.option("--delegate", type=click.Choice(_DELEGATES), default="cpu", show_default=True,
                     help="Where the model runs: cpu (XNNPACK), edgetpu (Coral), gpu."),
        click.option("--device", default=None, help="Edge TPU to use: usb, usb:0, pci:0 ..."),
        click.option("--delegate-path", type=click.Path(dir_okay=False), default=None,
                     help="A TFLite delegate library (.so) for --delegate gpu."),
        click.option("--fallback", type=click.Choice(["cpu"]), default=None,
                     help="If the delegate cannot load, warn and run on the CPU instead of failing."),
        click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
                     help="Labels file (one per line) for a model without edgecnn metadata."),
        click.option("--channel-order", type=click.Choice(["RGB", "BGR", "GRAY"]), default=None,
                     help="Input channel order for a model without metadata (default RGB)."),
        click.option("--mean", type=ChannelValues(), default=None, help="Normalization mean for a model without metadata: 127.5 or 123.7,116.3,103.5."),
        click.option("--std", type=ChannelValues(positive=True), default=None,
                     help="Normalization std for a model without metadata: 127.5 or 58.4,57.1,57.4."),
        click.option("--top-k", type=click.IntRange(min=1), default=1, show_default=True, help="Show the k best classes."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", default="0", show_default=True,
              help="Camera index, /dev/videoN, video file, image folder, rtsp:// or http:// URL, or picamera2.")
@click.option("--headless", is_flag=True, help="No window: print results (or --json) instead.")
@click.option("--json", "as_json", is_flag=True, help="One JSON line per frame and a summary line on stdout.")
@click.option("--record", type=click.Path(dir_okay=False), default=None, help="Write the annotated video here (.avi, .mp4).")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Stop after this many frames.")
@click.option("--duration", type=Finite(0, low_open=True), default=None, help="Stop after this many seconds.")
@click.option("--threshold", type=Finite(0.0, 1.0), default=0.0, show_default=True,
              help="Report no label when the best score is below this.")
@click.option("--smoothing", type=Finite(0.0, 1.0, high_open=True), default=0.0, show_default=True,
              help="Exponential moving average of scores over frames (0 = off, 0.6 steadies labels).")
@click.option("--realtime", is_flag=True, help="Play a video file at its own frame rate, dropping frames like a camera.")
@click.option("--loop", is_flag=True, help="Start a video file or folder again when it ends.")
@click.option("--mode", type=click.Choice(["auto", "inline", "pipeline"]), default="auto", show_default=True,
              help="Run the stages in one thread (inline) or overlapped in threads (pipeline); auto measures "
                   "the first frames and picks the faster.")
@click.option("--source-timeout", type=Finite(0, 3600, low_open=True), default=5.0, show_default=True,
              help="Seconds a network stream may stay silent (while opening, or between frames) before it "
                   "counts as stalled: the run reconnects, or fails if the first open gets no answer.")
@click.option("--explain", is_flag=True,
              help="Blend the class activation map (where the model looks) into the window and the recording.")
@click.option("--explain-every", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --explain: recolour the heatmap every N frames (cheaper; it lags up to N-1 frames).")
@model_options
def run(model, source, headless, as_json, record, max_frames, duration, threshold, smoothing, realtime, loop, mode,
        source_timeout, explain, explain_every, threads, delegate, device, delegate_path, fallback, labels_file,
        channel_order, mean, std, top_k):
    """Classify frames from a camera, stream, video file or image folder in real time."""
    from edgecnn.runtime.live.loop import LoopOptions, StopFlag, run_loop
    from edgecnn.runtime.live.outputs import JsonLinesOutput, TextOutput
    from edgecnn.runtime.live.overlay import RecordOutput, WindowOutput, check_display
    from edgecnn.runtime.live.sources import parse_source

    if not headless:
        check_display()  # before loading anything: the fix (--headless) is the same either way
    if explain and headless and not record:
        _warn("--explain draws on the window or the --record video; with --headless and no --record nothing shows it")
    classifier = _load_classifier(model, threads, delegate, device, delegate_path, fallback, labels_file,
                                  channel_order, mean, std, explain_every=explain_every if explain else None)
    frame_source = parse_source(source, warn=_warn, timeout_s=source_timeout)
    outputs = [JsonLinesOutput(sys.stdout) if as_json else TextOutput(sys.stdout, sys.stderr)] if (headless or as_json) else []
    with contextlib.ExitStack() as cleanup:
        if record:
            recorder = RecordOutput(record, fps=lambda: frame_source.fps)
            cleanup.callback(recorder.abort)  # no-op once the run closed it; drops a partial file otherwise
            outputs.insert(0, recorder)  # closed before the JSON/text summary is printed, so it can add to it
        if not headless:
            window = WindowOutput(f"edgecnn - {classifier.model_path.name}")
            cleanup.callback(window.close, {})  # idempotent; closes the window if the source never opened
            outputs.insert(0, window)
        options = LoopOptions(max_frames=max_frames, duration=duration, top_k=top_k, threshold=threshold,
                              smoothing=smoothing, realtime=realtime, loop=loop, mode=mode)
        stop = StopFlag()
        with _stop_on_signals(stop):
            summary = run_loop(classifier, frame_source, outputs, options, stop, warn=_warn)
    if not (headless or as_json):
        from edgecnn.runtime.live.outputs import format_summary

        click.echo(format_summary(summary), err=True)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON line per image on stdout.")
@model_options
def classify(model, paths, as_json, threads, delegate, device, delegate_path, fallback, labels_file,
             channel_order, mean, std, top_k):
    """Classify image files and folders of images (searched recursively)."""
    from edgecnn.runtime.live.sources import find_images
    from edgecnn.runtime.postprocess import predict
    from edgecnn.runtime.preprocess import read_image

    missing = [p for p in paths if not _exists(p)]
    if missing:
        raise DataError(f"{missing[0]} does not exist; give image files or folders")
    images = find_images(paths)
    if not images:
        raise DataError(f"no images found in {', '.join(paths)}; supported: .jpg .png .bmp .webp .tif ...")
    classifier = _load_classifier(model, threads, delegate, device, delegate_path, fallback, labels_file,
                                  channel_order, mean, std)
    done = skipped = 0
    for path in images:
        try:
            rgb = read_image(path)
        except DataError as exc:
            skipped += 1
            _warn(f"skipping {exc}")
            continue
        prediction = predict(classifier.predict_image(rgb), classifier.labels, k=top_k)
        done += 1
        if as_json:
            click.echo(json.dumps({"path": str(path), **prediction.to_dict()}))
        else:
            others = "".join(f"  {name} {score:.3f}" for name, score in prediction.top_k[1:])
            click.echo(f"{path}\t{prediction.label} {prediction.score:.3f}{others}")
    if done == 0:
        raise DataError(f"none of the {len(images)} image(s) could be decoded; check the files")
    if skipped:
        _warn(f"{skipped} of {len(images)} image(s) skipped because they could not be decoded")


def _load_classifier(model, threads, delegate, device, delegate_path, fallback, labels_file, channel_order, mean, std,
                     *, explain_every=None):
    from edgecnn.runtime.classifier import TFLiteClassifier
    from edgecnn.runtime.explain.live import CamClassifier
    from edgecnn.tflite.metadata import labels_from_file

    labels = labels_from_file(labels_file) if labels_file else None
    overrides = {"channel_order": channel_order, "mean": mean, "std": std}
    # run --explain: the same model with its feature map as a second output, the heatmap recoloured every N frames
    factory, extra = (CamClassifier, {"refresh": explain_every}) if explain_every else (TFLiteClassifier, {})
    classifier = factory(model, threads=threads, delegate=delegate, device=device,
                                  delegate_path=delegate_path, fallback=fallback, labels=labels,
                                  spec_overrides=overrides, **extra)
    for warning in classifier.warnings:
        _warn(warning)
    if classifier.metadata_source and classifier.metadata_source != "edgecnn metadata":
        click.echo(f"labels, normalization and colour space from its {classifier.metadata_source}", err=True)
    return classifier


def _exists(path) -> bool:
    from pathlib import Path

    return Path(path).exists()


@contextlib.contextmanager
def _stop_on_signals(stop):
    """SIGTERM (systemd) and Ctrl-C end the run cleanly: outputs are flushed and closed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, _frame):
        stop.request(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)
