"""Recipes: a model described end to end in one YAML file (see ``models/``).

A recipe names the architecture and its settings, the input size and normalization,
augmentation, the training schedule, the pruning target, QAT settings, export modes and
target, and the parity gates. This module loads one, checks every key and type up front
(unknown keys get the closest suggestion), applies command-line overrides, and compares two
resolved recipes so that ``--resume`` refuses to continue a run made with a different one.
It imports neither TensorFlow nor OpenCV.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from edgecnn.errors import RecipeError, closest
from edgecnn.model_sizes import MIN_SIZE

_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))

# section -> key -> (accepted types, default). The defaults make a small recipe valid.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], object]]] = {
    "model": {
        "architecture": ((str,), "mobilenet_v1_tiny"),
        # null: the registered architecture's own default (see `edgecnn models`).
        "alpha": (_OPTIONAL_NUMBER, None),
        "size": ((int,), 96),
        "channels": ((int,), 3),
        "depth": (_OPTIONAL_NUMBER, None),
        "dropout": (_OPTIONAL_NUMBER, None),
    },
    "input": {
        "channel_order": ((str,), "RGB"),
        "mean": ((list,), [127.5, 127.5, 127.5]),
        "std": ((list,), [127.5, 127.5, 127.5]),
        "resize": ((str,), "area"),
    },
    "data": {
        "augment": ((bool,), True),
        "val_fraction": (_NUMBER, 0.15),
        "test_fraction": (_NUMBER, 0.15),
        "seed": ((int,), 0),
    },
    "train": {
        "epochs": ((int,), 30),
        "batch_size": ((int,), 32),
        "lr": (_NUMBER, 0.004),
        "label_smoothing": (_NUMBER, 0.0),
        "patience": ((int,), 8),
    },
    "prune": {
        "sparsity": (_OPTIONAL_NUMBER, 0.5),
        "epochs": ((int,), 3),
    },
    "qat": {
        "enabled": ((bool,), True),
        "epochs": ((int,), 3),
        "preserve_sparsity": ((bool,), True),
    },
    "export": {
        "modes": ((list,), ["fp32", "int8"]),
        "io": ((str,), "int8"),
        "target": ((str,), "cpu"),
    },
    "parity": {
        "max_disagreement": (_OPTIONAL_NUMBER, 0.02),
        "max_accuracy_drop": (_OPTIONAL_NUMBER, 1.0),
    },
    "benchmark": {
        "threads": ((int,), 2),
        "formats": ((list, type(None)), None),
    },
}
TOP_LEVEL = {"name": (str,), "description": (str,)}
EXPORT_MODES = ("fp32", "fp16", "dynamic", "int8")
EXPORT_IO = ("int8", "uint8", "float32")
EXPORT_TARGETS = ("cpu", "gpu", "edgetpu")


def default_recipe() -> dict:
    recipe = {section: {key: copy.deepcopy(default) for key, (_, default) in keys.items()}
              for section, keys in SCHEMA.items()}
    recipe.update(name="custom", description="")
    return recipe


# Recipes that ship with edgecnn (models/ in the source tree links to these files).
BUILTIN_RECIPES = Path(__file__).parent / "recipes"


def builtin_recipe_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_RECIPES.glob("*.yaml"))


def find_recipe(name_or_path) -> Path:
    """A recipe file: a path as given, or the name of a recipe that ships with edgecnn."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    builtin = BUILTIN_RECIPES / f"{path.stem}.yaml"
    if path.suffix in ("", ".yaml") and path.parent == Path(".") and builtin.is_file():
        return builtin
    known = builtin_recipe_names()
    raise RecipeError(
        f"recipe {name_or_path} does not exist{closest(path.stem, known)}; give a YAML file or one of: {', '.join(known)}"
    )


def load_recipe(path) -> dict:
    """Read, check and complete a recipe file (or a built-in recipe's name); it holds every key of SCHEMA."""
    path = find_recipe(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RecipeError(f"recipe {path} is not valid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {path} must be a YAML mapping of sections (model, train, ...)")
    recipe = resolve(raw, source=str(path))
    if recipe["name"] == "custom":
        recipe["name"] = path.stem
    return recipe


def resolve(raw: dict, source: str = "recipe") -> dict:
    """Defaults completed with ``raw``, every key and type checked."""
    recipe = default_recipe()
    for section, value in raw.items():
        if section in TOP_LEVEL:
            _check_type(f"{section}", value, TOP_LEVEL[section], source)
            recipe[section] = value
            continue
        if section not in SCHEMA:
            raise RecipeError(f"{source}: unknown section {section!r}{closest(section, [*SCHEMA, *TOP_LEVEL])}")
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: section {section!r} must be a mapping of keys, got {type(value).__name__}")
        for key, item in value.items():
            if key not in SCHEMA[section]:
                raise RecipeError(
                    f"{source}: unknown key {section}.{key}{closest(key, SCHEMA[section])}; "
                    f"known keys: {', '.join(SCHEMA[section])}"
                )
            _check_type(f"{section}.{key}", item, SCHEMA[section][key][0], source)
            recipe[section][key] = item
    check_consistency(recipe, source)
    return recipe


def apply_overrides(recipe: dict, overrides: dict[str, object]) -> dict:
    """A copy of ``recipe`` with dotted overrides (``{"train.epochs": 5}``) from the command line."""
    result = copy.deepcopy(recipe)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise RecipeError(f"unknown recipe key {dotted!r}")
        _check_type(dotted, value, SCHEMA[section][key][0], "command line")
        result[section][key] = value
    check_consistency(result, "recipe with command-line overrides")
    return result


def check_consistency(recipe: dict, source: str) -> None:
    """Settings that are each valid but contradict one another."""
    model, export, data = recipe["model"], recipe["export"], recipe["data"]
    for mode in export["modes"]:
        if mode not in EXPORT_MODES:
            raise RecipeError(f"{source}: export.modes has {mode!r}{closest(str(mode), EXPORT_MODES)}; use {', '.join(EXPORT_MODES)}")
    if not export["modes"]:
        raise RecipeError(f"{source}: export.modes is empty; list at least one of {', '.join(EXPORT_MODES)}")
    if export["io"] not in EXPORT_IO:
        raise RecipeError(f"{source}: export.io {export['io']!r} is not one of {', '.join(EXPORT_IO)}")
    if export["target"] not in EXPORT_TARGETS:
        raise RecipeError(f"{source}: export.target {export['target']!r} is not one of {', '.join(EXPORT_TARGETS)}")
    if export["target"] == "edgetpu":
        if any(mode != "int8" for mode in export["modes"]):
            raise RecipeError(
                f"{source}: export.target edgetpu needs full-integer models, but export.modes has "
                f"{[m for m in export['modes'] if m != 'int8']}; set export.modes to [int8]"
            )
        if export["io"] == "float32":
            raise RecipeError(f"{source}: export.target edgetpu needs integer input/output; set export.io to int8 or uint8")
    if export["target"] == "gpu" and "int8" in export["modes"] and len(export["modes"]) == 1:
        raise RecipeError(f"{source}: export.target gpu runs float models; add fp16 or fp32 to export.modes")
    sparsity = recipe["prune"]["sparsity"]
    if sparsity is not None and not 0 < sparsity < 1:
        raise RecipeError(f"{source}: prune.sparsity must be between 0 and 1 (exclusive) or null to skip pruning, got {sparsity}")
    if model["size"] < MIN_SIZE:
        raise RecipeError(f"{source}: model.size {model['size']} is too small; the smallest input is {MIN_SIZE} pixels")
    if not 0 < data["val_fraction"] + data["test_fraction"] < 0.9:
        raise RecipeError(f"{source}: data.val_fraction + data.test_fraction must be between 0 and 0.9")
    for key in ("epochs", "batch_size"):
        if recipe["train"][key] < 1:
            raise RecipeError(f"{source}: train.{key} must be at least 1, got {recipe['train'][key]}")


def differences(saved: dict, wanted: dict) -> list[str]:
    """Dotted keys whose values differ between two resolved recipes (for --resume)."""
    diffs = []
    for section in SCHEMA:
        for key in SCHEMA[section]:
            a, b = saved.get(section, {}).get(key), wanted.get(section, {}).get(key)
            if a != b:
                diffs.append(f"{section}.{key}: run has {a!r}, recipe has {b!r}")
    return diffs


def _check_type(name: str, value, types: tuple[type, ...], source: str) -> None:
    # bool is an int in Python; a recipe that says `epochs: true` is a mistake, not 1.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise RecipeError(f"{source}: {name} must be {wanted}, got {type(value).__name__} {value!r}")
