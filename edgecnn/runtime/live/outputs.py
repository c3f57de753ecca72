"""Text outputs of the loop: JSON lines for machines, one readable line per frame for people.

Each output has ``write(result)`` (return False to stop the run) and ``close(summary)``.
Lines are flushed as they are written, so a consumer of ``--json`` sees each frame at once
and a run stopped by SIGTERM leaves complete lines and its summary.
"""

from __future__ import annotations

import json
import sys

STAGES = ("capture", "preprocess", "inference", "postprocess", "output")


def frame_record(result) -> dict:
    """The JSON line for one frame: at least frame, label, score, latency_ms."""
    record = {"type": "frame", "frame": result.frame.index}
    record.update(result.prediction.to_dict())
    record["latency_ms"] = round(result.latency_ms, 4)
    # Pipeline order, whatever order the threads filled them in.
    record["stages_ms"] = {stage: round(result.stages_ms[stage], 4) for stage in STAGES if stage in result.stages_ms}
    if result.frame.name is not None:
        record["file"] = result.frame.name
    return record


class JsonLinesOutput:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout

    def write(self, result) -> bool:
        self.stream.write(json.dumps(frame_record(result)) + "\n")
        self.stream.flush()
        return True

    def close(self, summary: dict) -> None:
        self.stream.write(json.dumps(summary) + "\n")
        self.stream.flush()


class TextOutput:
    """``frame 12  cat 0.93  (4.1 ms)`` per frame on stdout, a summary on stderr."""

    def __init__(self, stream=None, summary_stream=None):
        self.stream = stream or sys.stdout
        self.summary_stream = summary_stream or sys.stderr

    def write(self, result) -> bool:
        p = result.prediction
        label = p.label if p.label is not None else f"(below threshold: {p.top_k[0][0]})"
        others = "".join(f"  {name} {score:.2f}" for name, score in p.top_k[1:])
        source = f"  {result.frame.name}" if result.frame.name else ""
        self.stream.write(f"frame {result.frame.index}  {label} {p.score:.2f}{others}  "
                          f"({result.latency_ms:.1f} ms){source}\n")
        self.stream.flush()
        return True

    def close(self, summary: dict) -> None:
        self.summary_stream.write(format_summary(summary) + "\n")
        self.summary_stream.flush()


# Counted by the capture (issue 14); shown in the text summary when not zero.
_STREAM_COUNTS = ("reconnects", "frames_lost", "corrupt_frames", "read_errors", "stalls")


def format_summary(summary: dict) -> str:
    stages = ", ".join(f"{stage} {ms:.2f}" for stage, ms in summary["stages_ms"].items())
    latency = summary["latency_ms"]
    lat = f"latency p50 {latency['p50']:.1f} ms, " if latency.get("p50") is not None else ""
    extras = [f"{summary[k]} {k}" + (f" ({summary.get('gap_s', 0):.1f} s without frames)" if k == "gaps" else "")
              for k in ("gaps", "dropped", "skipped", "loops", *_STREAM_COUNTS) if summary.get(k)]
    if summary.get("file_frames"):
        extras.append("file ended after {read} of {announced} frames".format(**summary["file_frames"]))
    return (f"{summary['frames']} frames at {summary['fps']:.1f} FPS ({lat}stages ms: {stages})"
            + (f"; {', '.join(extras)}" if extras else "") + f"; stopped by {summary['stopped_by']}"
            + (f"\nran {summary['mode']}: {summary['mode_reason']}" if summary.get("mode") else ""))
