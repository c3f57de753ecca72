"""``edgecnn train``: an image folder (or built-in dataset) in, a run directory with a float model out.

The run directory (``edgecnn/rundir.py``) gets recipe.yaml (the resolved recipe plus a ``run``
section: data, labels, model size), labels.txt, split.json, float.keras (the best validation
epoch's weights in a fresh float32 model), history.json, curves.png and checkpoints/ for
``--resume``. Adam with cosine decay, early stopping on validation loss, optional label smoothing.

A run directory is in one of three states: new (absent or empty), unfinished (recipe.yaml, no
float.keras: continue with ``resume``), finished (float.keras: refused unless ``overwrite``, or
continued with ``resume`` and a larger ``epochs``). Everything is checked (data decoded, model
built) before anything in an existing run directory is touched.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import yaml

from edgecnn import __version__, interrupts
from edgecnn.atomic import write_json, write_text
from edgecnn.errors import ModelError, RecipeError, RunDirError, TrainingInterrupted, closest
from edgecnn.recipe import Recipe, apply_overrides, default_recipe, differences
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import InputSpec
from edgecnn.training.data import folders as data_mod
from edgecnn.training.data.balance import class_weights
from edgecnn.training.fit.callbacks import TrainState
from edgecnn.training.fit.fitting import fit_model
from edgecnn.training.fit.memory import check_fits
from edgecnn.training.fit.schedule import AUTO_MIN_EPOCHS, AUTO_MIN_STEPS, auto_epochs, steps_per_epoch
from edgecnn.training.models import get_spec
from edgecnn.training.models.pretrained import IMAGENET, build_pretrained, pretrained_input
from edgecnn.training.models.weight_source import describe_bad_source

STRATEGIES = ("default", "mirrored")
# Settings a resumed run may change: the length of training, not what is trained.
RESUMABLE_CHANGES = {"train.epochs", "train.patience"}

# train_run keyword -> recipe key
_OVERRIDE_KEYS = {
    "model": "model.architecture", "alpha": "model.alpha", "size": "model.size", "channels": "model.channels",
    "depth": "model.depth", "dropout": "model.dropout", "epochs": "train.epochs", "batch_size": "train.batch_size",
    "lr": "train.lr", "label_smoothing": "train.label_smoothing", "patience": "train.patience",
    "seed": "data.seed", "augment": "data.augment", "val_fraction": "data.val_fraction",
    "test_fraction": "data.test_fraction", "weights": "model.weights",
}


def train_run(data, out, *, recipe: Recipe | None = None, resume: bool = False, overwrite: bool = False,
              mixed_precision: bool = False, strategy=None, flip: bool | None = None, log=None,
              **overrides) -> RunDir:
    """Train a float model from ``data`` (a class-folder tree or a built-in name) into run directory ``out``.

    ``recipe`` is a resolved recipe (``edgecnn.recipe``) to start from; ``overrides`` are the
    command-line settings (model, alpha, size, channels, depth, dropout, epochs, batch_size, lr,
    label_smoothing, patience, seed, augment, val_fraction, test_fraction, weights); None means "not given".
    ``strategy``: None/"default", "mirrored", or a ``tf.distribute.Strategy`` (e.g. MultiWorkerMirroredStrategy).
    ``flip``: horizontal-flip augmentation; default on, except for the built-in ``digits``.
    """
    log = log or _stderr
    unknown = set(overrides) - set(_OVERRIDE_KEYS)
    if unknown:
        raise TypeError(f"train_run() got unknown settings: {', '.join(sorted(unknown))}")
    check_strategy(strategy)
    run = RunDir(out)
    if resume and overwrite:
        raise RecipeError("--resume and --overwrite contradict each other; use --resume to continue the run "
                          "or --overwrite to start it again")
    if resume:
        state, wanted, root, builtin, splits = _plan_resume(run, data, overrides)
        if bool(wanted.run.get("mixed_precision")) != bool(mixed_precision):
            # The optimizer's checkpoint differs (a loss-scale wrapper or not): Adam's state would not restore.
            flag = "with" if wanted.run.get("mixed_precision") else "without"
            raise RecipeError(f"{run.path} was trained {flag} --mixed-precision; resume it the same way")
    else:
        state, wanted, root, builtin, splits = _plan_new(run, data, recipe, overrides, overwrite, log)
    flip = wanted.run.get("flip", builtin != "digits") if flip is None else bool(flip)
    spec = data_mod.input_spec(wanted)

    if splits is None:
        labels, pixels, splits, skipped = _prepare_new_data(root, spec, wanted, log)
    else:
        labels = run.labels()
        check_fits(wanted, len(labels), len(splits["train"]) + len(splits["val"]))
        pixels, skipped = _decode_split(splits, spec), []
    if wanted.train.epochs is None:
        wanted.train.epochs = _auto_epochs(len(pixels["train"][0]), wanted.train.batch_size, log)
    wanted.run["class_weights"] = class_weights(pixels["train"][1], labels, log)
    wanted.run.update(data=str(data), data_root=str(root), builtin=builtin, labels=labels,
                         num_classes=len(labels), flip=flip, mixed_precision=bool(mixed_precision),
                         strategy=strategy if isinstance(strategy, (str, type(None))) else type(strategy).__name__,
                         edgecnn_version=__version__)
    if wanted.model.weights and not resume:
        _check_weights(wanted, len(labels))  # a bad --weights fails before the run directory is touched
    try:
        if not resume:
            run.clear()
            _write_run_files(run, wanted, labels, root, splits, skipped)
        else:
            write_text(run.recipe, _dump_yaml(wanted))
            # Unfinished again until the longer training ends: a later stage must not take the old model for it.
            run.float_model.unlink(missing_ok=True)
        fit_model(run, wanted, spec, pixels, state, resume=resume, mixed_precision=mixed_precision,
                  strategy=strategy, flip=flip, log=log)
    except BaseException as exc:
        _forget_if_interrupted_early(run, resume, exc)
        raise
    return run


def _forget_if_interrupted_early(run: RunDir, resume: bool, exc: BaseException) -> None:
    """Ctrl-C before a new run's first checkpoint: empty the folder, so that nothing asks for a --resume
    that has nothing to resume from; the same command then simply runs again."""
    if resume or not interrupts.caused_by_interrupt(exc):
        return
    state = TrainState.load(run.checkpoints) if run.checkpoints.is_dir() else None
    if state is not None and state.last:
        return
    if run.path.is_dir():
        run.clear()
    raise TrainingInterrupted("training interrupted before its first epoch ended; nothing was kept: run the same "
                              "command again") from None


def _auto_epochs(train_images: int, batch_size: int, log) -> int:
    epochs = auto_epochs(train_images, batch_size)
    log(f"training for up to {epochs} epochs of {steps_per_epoch(train_images, batch_size)} step(s) "
        f"(train.epochs auto: at least {AUTO_MIN_EPOCHS} epochs and {AUTO_MIN_STEPS} steps)")
    return epochs


def _plan_new(run: RunDir, data, recipe, overrides: dict, overwrite: bool, log):
    """(state, recipe, data root, built-in name, None) for a new run; nothing is written yet."""
    _check_can_start(run, overwrite)
    root, builtin = data_mod.resolve_data(data)
    given = _with_overrides(recipe or default_recipe(), overrides)
    wanted = complete_recipe(copy.deepcopy(given))
    _say_what_weights_changed(given, wanted, log)
    _check_not_inside(run, root)
    return TrainState(), wanted, root, builtin, None


def _plan_resume(run: RunDir, data, overrides: dict):
    """(state, recipe, data root, built-in name, saved split) to continue ``run``."""
    state = _resumable_state(run)
    wanted, root, builtin = _resume_recipe(run, data, overrides)
    if state.epoch >= wanted.train.epochs:
        raise RunDirError(f"{run.path} has already trained {state.epoch} epoch(s); pass a larger --epochs "
                          "to continue it")
    return state, wanted, root, builtin, _saved_split(run)


# --- recipe ----------------------------------------------------------------------------------

def _with_overrides(base: Recipe, overrides: dict) -> Recipe:
    """A copy of ``base`` (its run section kept) with the command-line settings."""
    return apply_overrides(base, {_OVERRIDE_KEYS[k]: v for k, v in overrides.items() if v is not None})


def complete_recipe(recipe: Recipe) -> Recipe:
    """Fill the registered model's defaults (alpha, depth, dropout) and make channels and normalization agree."""
    model, inputs = recipe.model, recipe.input
    spec = get_spec(model.architecture)
    for key in ("alpha", "depth", "dropout"):
        if getattr(model, key) is None:
            setattr(model, key, getattr(spec, key))
    _pretrained_input(recipe)
    if model.channels not in (1, 3):
        raise RecipeError(f"--channels must be 1 (grayscale) or 3 (colour), got {model.channels}")
    if model.channels == 1:
        inputs.channel_order = "GRAY"
        for key in ("mean", "std"):
            values = getattr(inputs, key)
            if len(values) == 3 and len(set(values)) == 1:
                setattr(inputs, key, values[:1])
    elif inputs.channel_order == "GRAY":
        raise RecipeError("input.channel_order GRAY needs model.channels 1; set channels to 1 or the order to RGB")
    data_mod.input_spec(recipe)  # checks mean/std/resize now, before any training
    return recipe


def _pretrained_input(recipe: Recipe) -> None:
    """Weights from elsewhere fix the input: ImageNet's MobileNets take RGB scaled to [-1, 1]."""
    model, inputs = recipe.model, recipe.input
    if model.weights is None:
        return
    if model.weights != IMAGENET:
        path = Path(model.weights).expanduser()
        if not path.exists():
            raise ModelError(describe_bad_source(model.weights))
        model.weights = str(path.resolve())  # resume and the final model re-read it
        return
    wanted = pretrained_input(IMAGENET, model.size, model.channels)
    model.channels = wanted.channels
    inputs.channel_order = wanted.channel_order
    inputs.mean, inputs.std = [wanted.mean[0]] * wanted.channels, [wanted.std[0]] * wanted.channels


def _check_weights(recipe: Recipe, num_classes: int) -> None:
    """Build the pretrained model once: an unknown source, a missing download or a shape mismatch says so now."""
    m = recipe.model
    build_pretrained(m.weights, m.architecture, num_classes=num_classes, size=m.size, channels=m.channels,
                     alpha=m.alpha, dropout=m.dropout)


def _say_what_weights_changed(before: Recipe, after: Recipe, log) -> None:
    if before.model.channels == 1 and after.model.channels == 3:
        log("note: ImageNet weights take colour images: grayscale photos are fed as 3 equal channels (RGB)")
    if (before.input.mean, before.input.std) != (after.input.mean, after.input.std) and after.model.weights:
        log(f"note: ImageNet weights expect pixels scaled to [-1, 1]: input mean/std set to "
            f"{after.input.mean[0]:g}/{after.input.std[0]:g}")


def _resume_recipe(run: RunDir, data, overrides: dict) -> tuple[Recipe, Path, str | None]:
    saved = run.load_recipe()
    wanted = complete_recipe(_with_overrides(saved, overrides))
    saved_complete = complete_recipe(_with_overrides(saved, {}))
    changed = [d for d in differences(saved_complete, wanted) if d.split(":")[0] not in RESUMABLE_CHANGES]
    if changed:
        raise RecipeError(f"cannot resume {run.path} with different settings ({'; '.join(changed)}); "
                          "drop those options or train into a new --out")
    if not saved.run.get("data_root"):
        raise RunDirError(f"{run.recipe} has no run section (it was not written by 'edgecnn train'); "
                          "cannot resume it: train again with --overwrite")
    root = Path(saved.run["data_root"])
    given_root, _ = data_mod.resolve_data(data) if data is not None else (root, None)
    if given_root != root:
        raise RecipeError(f"{run.path} was trained on {root}, not {given_root}; resume with the same DATA")
    return wanted, root, saved.run.get("builtin")


def _dump_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False, default_flow_style=False)


# --- run directory states ----------------------------------------------------------------------

def _check_can_start(run: RunDir, overwrite: bool) -> None:
    if not run.path.exists():
        return
    if not run.path.is_dir():
        raise RunDirError(f"--out {run.path} is a file; choose a folder for the run")
    if not any(run.path.iterdir()):
        return
    if not run.exists():
        raise RunDirError(f"--out {run.path} is not empty and holds no edgecnn run (no recipe.yaml); "
                          "choose a new or empty folder")
    if overwrite:
        return
    if run.float_model.exists():
        raise RunDirError(f"{run.path} already holds a finished run; pass --overwrite to replace it, "
                          "or choose another --out")
    raise RunDirError(f"{run.path} holds an unfinished run; pass --resume to continue it or --overwrite "
                      "to start again")


def _resumable_state(run: RunDir):
    if not run.exists():
        raise RunDirError(f"nothing to resume in {run.path}: no run there; train without --resume")
    state = TrainState.load(run.checkpoints)
    if state is None or not state.last:
        raise RunDirError(f"{run.path} has no checkpoint to resume from (killed before the first epoch ended); "
                          "start again with --overwrite")
    state.stopped_early = False  # a user who resumes asks for more epochs
    state.wait = 0
    return state


def _check_not_inside(run: RunDir, root: Path) -> None:
    """The run and the data must not contain each other: a run inside DATA reads as one more class next time."""
    out, data = run.path.resolve(), root.resolve()
    if out.is_relative_to(data):
        raise RunDirError(f"--out {run.path} lies inside the data folder {root}, where the next 'edgecnn train' would "
                          f"take it for a class of images; put the run outside {root}")
    if run.path.exists() and data.is_relative_to(out):
        raise RunDirError(f"the data folder {root} lies inside --out {run.path}; put the run somewhere else")


# --- data --------------------------------------------------------------------------------------

def _prepare_new_data(root: Path, spec: InputSpec, recipe: Recipe, log):
    settings = recipe.data
    folder = data_mod.scan_folder(root)
    check_fits(recipe, len(folder.labels), len(folder.items))  # before a single image is decoded
    pixels, kept, skipped = data_mod.decode_items(folder.items, spec)
    data_mod.warn_skipped(skipped)
    if folder.ignored:
        log(f"ignored {folder.ignored} non-image file(s) in {root}")
    data_mod.check_class_counts(kept, folder.labels)
    splits = data_mod.split_items(kept, len(folder.labels), val_fraction=settings.val_fraction,
                                  test_fraction=settings.test_fraction, seed=settings.seed)
    index = {path: i for i, (path, _) in enumerate(kept)}
    by_split = {name: (pixels[[index[p] for p, _ in items]], np.array([label for _, label in items], np.int64))
                for name, items in splits.items()}
    return folder.labels, by_split, splits, skipped


def _saved_split(run: RunDir) -> dict:
    return {name: run.split_items(name) for name in ("train", "val", "test")}


def _decode_split(splits: dict, spec: InputSpec) -> dict:
    decoded = {}
    for name in ("train", "val"):
        pixels, _, _ = data_mod.decode_items(splits[name], spec, skip_unreadable=False)
        decoded[name] = (pixels, np.array([label for _, label in splits[name]], np.int64))
    return decoded


def _write_run_files(run: RunDir, recipe: Recipe, labels, root: Path, splits: dict, skipped) -> None:
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    write_text(run.recipe, _dump_yaml(recipe))
    write_text(run.labels_file, "".join(f"{label}\n" for label in labels))
    write_json(run.split, data_mod.split_to_json(root, splits, skipped))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_strategy(strategy) -> None:
    if isinstance(strategy, str) and strategy not in STRATEGIES:
        raise RecipeError(f"unknown --strategy {strategy!r}{closest(strategy, STRATEGIES)}; "
                          f"use {' or '.join(STRATEGIES)}")

