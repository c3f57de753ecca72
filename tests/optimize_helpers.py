"""Shared artifacts for the prune / QAT / export / Edge TPU tests.

The trained run is conftest's session ``tiny_run`` (a real ``edgecnn train`` run on digits);
pruning and QAT copies of it, untrained runs of every architecture and their exports are made
once per session and cached here, because each takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

DIGIT_CLASSES = 4


def write_digit_folder(root: Path, *, classes: int = DIGIT_CLASSES, per_class: int = 30, scale: int = 2) -> Path:
    """An image folder root/<digit>/<n>.png of real handwritten digits (8x8, upscaled)."""
    import cv2
    from sklearn.datasets import load_digits

    digits = load_digits()
    root.mkdir(parents=True, exist_ok=True)
    for label in range(classes):
        folder = root / str(label)
        folder.mkdir(exist_ok=True)
        images = digits.images[digits.target == label][:per_class]
        for i, image in enumerate(images):
            pixels = np.clip(image * 16, 0, 255).astype(np.uint8)
            pixels = cv2.resize(pixels, (8 * scale, 8 * scale), interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(folder / f"{i}.png"), pixels)
    return root


# --- artifacts shared by the optimize/export test modules within one pytest session ------------
# Training, pruning and QAT take seconds each; every test module that needs them gets a copy of
# the same ones (a module-level cache: this helper module is imported once per session).

_CACHE: dict[str, Path] = {}


def _cached(key: str, make) -> Path:
    if key not in _CACHE or not _CACHE[key].exists():
        _CACHE[key] = make()
    return _CACHE[key]


def copy_run(source: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(source, target)
    return target


def shared_digits(factory) -> Path:
    return _cached("digits", lambda: write_digit_folder(factory.mktemp("digits") / "digits"))


PRUNE_SPARSITY = 0.6


def shared_pruned_run(factory, trained: Path) -> Path:
    """`edgecnn prune RUN --sparsity 0.6 --epochs 1 --json` on a copy of ``trained`` (stdout kept)."""
    def make():
        from click.testing import CliRunner

        from edgecnn.cli import cli

        run = copy_run(trained, factory.mktemp("pruned") / "run")
        (run / "float.sha256").write_text(_sha256(run / "float.keras"))
        result = CliRunner().invoke(cli, ["prune", str(run), "--sparsity", str(PRUNE_SPARSITY), "--epochs", "1",
                                          "--batch-size", "64", "--json"])
        if result.exit_code != 0:
            raise RuntimeError(f"edgecnn prune failed: {result.output}")
        (run / "prune_cli_stdout.json").write_text(result.stdout)
        return run

    return _cached("pruned", make)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def shared_pqat_run(factory, trained: Path) -> Path:
    """The pruned run, then `edgecnn qat RUN --preserve-sparsity --epochs 1 --json` (stdout kept)."""
    def make():
        from click.testing import CliRunner

        from edgecnn.cli import cli

        run = copy_run(shared_pruned_run(factory, trained), factory.mktemp("pqat") / "run")
        result = CliRunner().invoke(cli, ["qat", str(run), "--preserve-sparsity", "--epochs", "1", "--batch-size", "64",
                                          "--json"])
        if result.exit_code != 0:
            raise RuntimeError(f"edgecnn qat failed: {result.output}")
        (run / "qat_cli_stdout.json").write_text(result.stdout)
        return run

    return _cached("pqat", make)


def untrained_run(root: Path, architecture: str, *, size: int = 16, classes: int = DIGIT_CLASSES,
                  data: Path | None = None) -> Path:
    """A run directory holding a freshly built (untrained) model: enough for conversion tests."""
    import yaml

    from edgecnn.recipe import default_recipe
    from edgecnn.training.models.mobilenet import build_model
    from edgecnn.training.models.model_io import save_keras_model

    recipe = default_recipe()
    recipe.name = f"test_{architecture}"
    recipe.model.architecture, recipe.model.size, recipe.model.alpha, recipe.model.channels = architecture, size, 0.25, 3
    root.mkdir(parents=True, exist_ok=True)
    labels = [f"class{i}" for i in range(classes)]
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict()))
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    if data is not None:
        names = sorted(p.name for p in data.iterdir() if p.is_dir())
        items = [[str(p.relative_to(data)), i] for i, n in enumerate(names) for p in sorted((data / n).iterdir())]
        (root / "labels.txt").write_text("\n".join(names) + "\n")
        (root / "split.json").write_text(json.dumps({"data_root": str(data), "train": items[::2],
                                                     "val": items[1::4], "test": items[3::4]}))
    model = build_model(architecture, num_classes=classes, size=size, alpha=0.25)
    save_keras_model(model, root / "float.keras")
    return root


def shared_arch_run(factory, architecture: str) -> Path:
    """An untrained run of ``architecture`` (16 px, alpha 0.25) whose split points at the digits."""
    return _cached(f"arch:{architecture}", lambda: untrained_run(factory.mktemp(architecture) / "run", architecture,
                                                                 data=shared_digits(factory)))


EXPORT_MODES = ("none", "fp16", "dynamic", "int8")


def shared_export(factory, architecture: str, mode: str):
    """The export of an architecture's run in one --quantize mode. All modes are exported together
    (``export_modes`` loads the model once) and cached: the Edge TPU tests reuse the int8 files."""
    key = f"export:{architecture}"
    if key not in _CACHE_RESULTS:
        from edgecnn.training.export.exporter import export_modes

        results = export_modes(shared_arch_run(factory, architecture), EXPORT_MODES, progress=False)
        _CACHE_RESULTS[key] = dict(zip(EXPORT_MODES, results))
    return _CACHE_RESULTS[key][mode]


_CACHE_RESULTS: dict = {}
