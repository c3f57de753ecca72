"""A labelled video clip from held-out images, for checking the live loop end to end.

The demo writes the run's test images into a short MJPG clip (each image held for a few
frames) and keeps the true label of every frame beside it. Running ``edgecnn run`` on the
clip and comparing its per-frame JSON lines with those labels gives the live loop's accuracy,
with video compression and the real capture/preprocess/invoke path in the way.
"""

from __future__ import annotations

import json
from pathlib import Path

from edgecnn.atomic import atomic_path, write_json
from edgecnn.errors import DataError
from edgecnn.runtime.preprocess import read_image

FRAMES_PER_IMAGE = 3
FRAME_SIZE = 128
FPS = 15.0


def write_labelled_clip(items, labels: list[str], out_path, *, limit: int = 200) -> Path:
    """Write ``items`` ((image path, label index) pairs) as a clip; labels go to ``<clip>.labels.json``."""
    import cv2

    out_path = Path(out_path)
    chosen = list(items)[:limit]
    if not chosen:
        raise DataError("no held-out images to put into the demo clip; the run's test split is empty")
    frame_labels = []
    with atomic_path(out_path) as tmp:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (FRAME_SIZE, FRAME_SIZE))
        if not writer.isOpened():
            raise DataError(f"OpenCV cannot write MJPG video to {out_path}; check the folder is writable")
        try:
            for path, label in chosen:
                rgb = read_image(path)
                # Bilinear, as the training pipeline enlarges small images (8x8 digits): nearest-neighbour
                # blocks would be a different picture from the one the model learned.
                frame = cv2.resize(rgb, (FRAME_SIZE, FRAME_SIZE), interpolation=cv2.INTER_LINEAR)
                bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
                for _ in range(FRAMES_PER_IMAGE):
                    writer.write(bgr)
                    frame_labels.append(labels[label])
        finally:
            writer.release()
    write_json(labels_path(out_path), {"fps": FPS, "frames_per_image": FRAMES_PER_IMAGE, "labels": frame_labels})
    return out_path


def labels_path(clip_path) -> Path:
    clip_path = Path(clip_path)
    return clip_path.with_name(clip_path.name + ".labels.json")


def live_loop_accuracy(jsonl_path, clip_path) -> dict:
    """Accuracy of ``edgecnn run --json`` output against the clip's per-frame labels."""
    truth = json.loads(labels_path(clip_path).read_text(encoding="utf-8"))["labels"]
    correct = total = 0
    summary = {}
    for line in Path(jsonl_path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        record = json.loads(line)
        if "frame" not in record:
            summary = record  # the final summary line
            continue
        index = record["frame"]
        if 0 <= index < len(truth):
            total += 1
            correct += int(record.get("label") == truth[index])
    if total == 0:
        raise DataError(f"{jsonl_path} holds no per-frame results; the live loop classified nothing")
    return {"frames": total, "accuracy": correct / total, "fps": summary.get("fps"), "summary": summary}
