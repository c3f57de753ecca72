"""Run inside the mediapipe venv (not edgecnn's): MediaPipe Tasks' ImageClassifier on image files.

Usage: python mediapipe_classify.py MODEL IMAGE... -> one JSON object on stdout:
{"results": [{"index": top-1 index, "name": its category name, "scores": all scores by index}, ...]}
"""

import json
import sys

import mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision


def main(model, images):
    options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=-1)
    classifier = vision.ImageClassifier.create_from_options(options)
    results = []
    try:
        for path in images:
            categories = classifier.classify(mp.Image.create_from_file(path)).classifications[0].categories
            scores = {c.index: c.score for c in categories}
            top = max(categories, key=lambda c: (c.score, -c.index))
            results.append({"index": top.index, "name": top.category_name,
                            "scores": [scores[i] for i in range(len(scores))]})
    finally:
        classifier.close()
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
