"""Video files that end early: what the container announced against what could be read.

OpenCV's ``read()`` simply stops at the point where a file was cut, exactly as at its real end,
so a truncated recording used to end with exit 0 and no word. ``CAP_PROP_FRAME_COUNT`` is the
number of frames the container's header or index announces (AVI: the header's total; MP4: the
``moov`` index), so fewer frames read than announced means the file ended early.

An MP4 written by OpenCV (or a camera) keeps its ``moov`` index at the end; cut anywhere, it has
none, and FFmpeg cannot open it at all. ``missing_index_message`` says that instead of "codec not
supported".
"""

from __future__ import annotations

import struct
from pathlib import Path

MP4_SUFFIXES = frozenset({".mp4", ".m4v", ".mov"})


def short_file_message(name: str, read: int, announced: int | None) -> str | None:
    if announced is None or read >= announced:
        return None
    return (f"{name} ended after {read} of the {announced} frames its container announces; the file is "
            "truncated or damaged (an interrupted recording or copy?)")


def mp4_top_level_boxes(path) -> list[tuple[str, bool]]:
    """An MP4 file's top-level boxes in order, each as (name, whether the file holds all of it)."""
    boxes = []
    with open(path, "rb") as f:
        size_total = f.seek(0, 2)
        offset = 0
        while offset + 8 <= size_total:
            f.seek(offset)
            size, kind = struct.unpack(">I4s", f.read(8))
            if size == 1:  # a 64-bit size follows
                size = struct.unpack(">Q", f.read(8))[0]
            elif size == 0:  # the box runs to the end of the file
                size = size_total - offset
            if size < 8 or not kind.isascii():
                break
            boxes.append((kind.decode("ascii"), offset + size <= size_total))
            offset += size
    return boxes


def missing_index_message(path) -> str | None:
    """Why an MP4 file cannot be opened, if the reason is a missing or cut ``moov`` index; else None."""
    path = Path(path)
    if path.suffix.lower() not in MP4_SUFFIXES:
        return None
    try:
        boxes = mp4_top_level_boxes(path)
    except OSError:
        return None
    if not boxes or boxes[0][0] != "ftyp" or ("moov", True) in boxes:
        return None
    return (f"cannot open {path}: its 'moov' index is missing or cut, so the file was cut short (an interrupted "
            "recording or copy?) and its frames cannot be located; record or copy it again")
