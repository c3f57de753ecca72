"""Small real-image folders, edgecnn's defaults, and a simple baseline on the same split.

The question a new user asks first: do I get a useful classifier from a folder of a few hundred
photos with `edgecnn train FOLDER` and no tuning flags? Each task is built from real images that
ship inside installable packages (never images edgecnn draws itself, never a download):
- fmnist2_gray: Fashion-MNIST sneaker vs ankle boot, 2 x 150 grayscale 28x28 photos
  (Debian's `dataset-fashion-mnist`: apt-get install dataset-fashion-mnist);
- fmnist3_color: Fashion-MNIST t-shirt / trouser / bag, 3 x 60, each photo tinted with a background
  and a foreground colour drawn independently of its class (colour carries no label);
- digits2_gray: scikit-learn's handwritten digits 3 vs 8, 2 x 100 (8x8);
- photos2_color: crops of scikit-learn's two sample photographs (china.jpg, flower.jpg),
  2 x 80, random position and scale, 64x64 colour.

Each task runs `edgecnn train FOLDER --out RUN --seed S` in a fresh process for every seed, then
`edgecnn evaluate RUN --json` on the run's held-out test split. The baseline is what a user could
write instead in five lines: scikit-learn's StandardScaler + LogisticRegression on raw pixels,
fit on the same run's train split and scored on its test split. Wall time is the whole command.

    .venv/bin/python tools/bench_small_data.py                 # all tasks, seeds 0 1 2
    .venv/bin/python tools/bench_small_data.py --tasks digits2_gray --seeds 0 --json
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

FMNIST = Path("/usr/share/datasets/fashion-mnist")
FMNIST_NAMES = ["tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle_boot"]


# --- the tasks ------------------------------------------------------------------------------------

def _read_idx(path: Path, offset: int, shape_words: int) -> np.ndarray:
    raw = gzip.open(path, "rb").read()
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(shape_words)]
    return np.frombuffer(raw, np.uint8, offset=offset).reshape(dims)


def _fashion_mnist() -> tuple[np.ndarray, np.ndarray]:
    if not (FMNIST / "train-images-idx3-ubyte.gz").is_file():
        raise SystemExit(f"Fashion-MNIST is not in {FMNIST}: apt-get install dataset-fashion-mnist "
                         "(or leave out the fmnist tasks with --tasks)")
    images = _read_idx(FMNIST / "train-images-idx3-ubyte.gz", 16, 3)
    labels = _read_idx(FMNIST / "train-labels-idx1-ubyte.gz", 8, 1)
    return images, labels


def _pick(labels: np.ndarray, classes, per_class: int, seed: int) -> dict[int, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {c: np.sort(rng.choice(np.flatnonzero(labels == c), per_class, replace=False)) for c in classes}


def _write(root: Path, name: str, images) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        # cv2 writes BGR; the tasks hold RGB (or gray) arrays.
        cv2.imwrite(str(folder / f"{i:04d}.png"), image if image.ndim == 2 else image[..., ::-1])


def fmnist2_gray(root: Path) -> None:
    images, labels = _fashion_mnist()
    for c, chosen in _pick(labels, [7, 9], 150, seed=1).items():
        _write(root, FMNIST_NAMES[c], images[chosen])


def fmnist3_color(root: Path) -> None:
    images, labels = _fashion_mnist()
    rng = np.random.default_rng(3)
    for c, chosen in _pick(labels, [0, 1, 8], 60, seed=2).items():
        tinted = []
        for image in images[chosen]:
            background, foreground = rng.uniform(0, 120, 3), rng.uniform(120, 255, 3)
            alpha = image.astype(np.float32)[..., None] / 255.0
            tinted.append(np.clip(background * (1 - alpha) + foreground * alpha, 0, 255).astype(np.uint8))
        _write(root, FMNIST_NAMES[c], tinted)


def digits2_gray(root: Path) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    for c, chosen in _pick(digits.target, [3, 8], 100, seed=4).items():
        _write(root, ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"][c],
                pixels[chosen])


def photos2_color(root: Path) -> None:
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(5)
    photos = load_sample_images()
    for name, photo in zip(("china", "flower"), photos.images):
        crops = []
        for _ in range(80):
            side = int(rng.integers(48, 160))
            y, x = (int(rng.integers(0, photo.shape[k] - side)) for k in (0, 1))
            crops.append(cv2.resize(photo[y:y + side, x:x + side], (64, 64), interpolation=cv2.INTER_AREA))
        _write(root, name, crops)


TASKS = {"fmnist2_gray": fmnist2_gray, "fmnist3_color": fmnist3_color, "digits2_gray": digits2_gray,
         "photos2_color": photos2_color}


# --- running and scoring ------------------------------------------------------------------------

def edgecnn(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgecnn", *args], capture_output=True, text=True)


def baseline_accuracy(run: Path) -> float:
    """LogisticRegression on raw pixels (the images' own size), fit on the run's train split, on its test split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    split = json.loads((run / "split.json").read_text())
    root = Path(split["data_root"])

    def load(name):
        x = np.stack([cv2.imread(str(root / path), cv2.IMREAD_COLOR).astype(np.float32).ravel() / 255.0
                      for path, _ in split[name]])
        return x, np.array([label for _, label in split[name]])

    (x_train, y_train), (x_test, y_test) = load("train"), load("test")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000)).fit(x_train, y_train)
    return float(model.score(x_test, y_test))


def run_once(folder: Path, runs: Path, seed: int, extra: list[str] = ()) -> dict:
    out = runs / f"{folder.name}-seed{seed}"
    started = time.perf_counter()
    done = edgecnn("train", str(folder), "--out", str(out), "--seed", str(seed), "--overwrite", *extra)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"edgecnn train {folder} failed:\n{done.stderr[-2000:]}")
    evaluated = edgecnn("evaluate", str(out), "--json")
    result = json.loads(evaluated.stdout)
    history = json.loads((out / "history.json").read_text())
    return {"task": folder.name, "seed": seed, "accuracy": result["accuracy"],
            "degenerate": bool(result.get("degenerate", {}).get("degenerate")), "test_images": result["num_samples"],
            "baseline_accuracy": baseline_accuracy(out), "best_epoch": history["best_epoch"],
            "epochs_run": len(history["epochs"]), "wall_s": round(wall, 1)}


def summarize(rows: list[dict]) -> dict:
    summary = {}
    for task in dict.fromkeys(row["task"] for row in rows):
        mine = [row for row in rows if row["task"] == task]
        acc = [row["accuracy"] for row in mine]
        base = [row["baseline_accuracy"] for row in mine]
        summary[task] = {"seeds": len(mine), "min": min(acc), "median": statistics.median(acc),
                         "baseline_min": min(base), "baseline_median": statistics.median(base),
                         "beats_baseline": min(acc) > statistics.median(base),
                         "wall_s_median": statistics.median(row["wall_s"] for row in mine)}
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=sorted(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--keep", type=Path, help="keep folders and runs here (default: a temporary folder)")
    parser.add_argument("--extra", default="", help="more `edgecnn train` options, e.g. '--patience 40' (default: none)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    work = args.keep or Path(tempfile.mkdtemp(prefix="edgecnn-small-"))
    rows = []
    try:
        for task in args.tasks:
            folder = work / "data" / task
            shutil.rmtree(folder, ignore_errors=True)
            TASKS[task](folder)
            for seed in args.seeds:
                rows.append(run_once(folder, work / "runs", seed, args.extra.split()))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    summary = summarize(rows)
    if args.json:
        print(json.dumps({"rows": rows, "summary": summary}, indent=1))
        return
    print(f"{'task':<14} {'seeds':>5} {'min %':>6} {'median %':>8} {'baseline %':>10} {'beats':>5} {'wall s':>6}")
    for task, s in summary.items():
        print(f"{task:<14} {s['seeds']:>5} {100 * s['min']:>6.1f} {100 * s['median']:>8.1f} "
              f"{100 * s['baseline_median']:>10.1f} {'yes' if s['beats_baseline'] else 'NO':>5} {s['wall_s_median']:>6.1f}")


if __name__ == "__main__":
    main()
