"""Recipes: a model described end to end in one YAML file (see ``models/``).

A recipe names the architecture and its settings, the input size and normalization,
augmentation, the training schedule, the pruning target, QAT settings, export modes and
target, and the parity gates. This module loads one, checks every key and type up front
(unknown keys get the closest suggestion), applies command-line overrides, and compares two
resolved recipes so that ``--resume`` refuses to continue a run made with a different one.

A resolved recipe is a ``Recipe``: one dataclass per section (``ModelSettings``, ``TrainSettings``
...), whose field defaults are the only defaults there are (the loader, ``--help`` and every
stage read them from here) and whose field metadata names the types a YAML value may have.
A run's recipe.yaml is ``Recipe.to_dict()`` and reads back with ``RunDir.load_recipe()``;
keys it lacks (an older run) take the defaults. The export rules live in ``export_plan``.
It imports neither TensorFlow nor OpenCV.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edgecnn import unique_yaml
from edgecnn.deploy import check_deploy_settings
from edgecnn.errors import RecipeError, closest
from edgecnn.export_plan import DEFAULT_IO, EXPORT_IO, EXPORT_MODES, EXPORT_TARGETS, check_recipe_export  # noqa: F401
from edgecnn.formats import RENAMED as RENAMED_FORMATS, check_recipe_formats
from edgecnn.model_sizes import MAX_SIZE, MIN_SIZE
from edgecnn.numbers import NumberRange, check_number

_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_SIZE_HINT = f"edgecnn trains inputs of {MIN_SIZE} to {MAX_SIZE} pixels (model_sizes.py)"


def _setting(default, *types: type, **limits):
    """A recipe key: its default (the only one there is), the types its YAML value may have and, for a
    number, its range (``low``, ``high``, ``low_open``, ``high_open``, ``hint``: see ``NumberRange``),
    checked for YAML values and command-line overrides alike."""
    metadata = {"types": types}
    if limits:
        metadata["range"] = NumberRange(integer=float not in types, **limits)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class ModelSettings:
    architecture: str = _setting("mobilenet_v1_tiny", str)
    # None (null): the registered architecture's own default (see `edgecnn models`).
    alpha: float | None = _setting(None, *_OPTIONAL_NUMBER, low=0, low_open=True)
    size: int = _setting(96, int, low=MIN_SIZE, high=MAX_SIZE, hint=_SIZE_HINT)
    channels: int = _setting(3, int)
    depth: float | None = _setting(None, *_OPTIONAL_NUMBER, low=0, low_open=True)
    dropout: float | None = _setting(None, *_OPTIONAL_NUMBER, low=0, high=1, high_open=True)
    # None (null): random initialisation. "imagenet": keras.applications' published weights (see `edgecnn
    # models`); or a path: another run, a .keras model or a Keras weights file with a compatible backbone.
    weights: str | None = _setting(None, str, type(None))


@dataclass
class InputSettings:
    channel_order: str = _setting("RGB", str)
    mean: list = _setting([127.5, 127.5, 127.5], list)
    std: list = _setting([127.5, 127.5, 127.5], list)
    resize: str = _setting("area", str)


@dataclass
class DataSettings:
    augment: bool = _setting(True, bool)
    val_fraction: float = _setting(0.15, *_NUMBER, low=0, high=1, high_open=True)
    test_fraction: float = _setting(0.15, *_NUMBER, low=0, high=1, high_open=True)
    seed: int = _setting(0, int)


@dataclass
class TrainSettings:
    # None (null): as many epochs as this folder needs for enough optimizer steps (training/fit/schedule.py).
    epochs: int | None = _setting(None, int, type(None))
    batch_size: int = _setting(32, int)
    lr: float = _setting(0.004, *_NUMBER, low=0, low_open=True)
    label_smoothing: float = _setting(0.0, *_NUMBER, low=0, high=1, high_open=True)
    patience: int = _setting(8, int, low=0)


@dataclass
class PruneSettings:
    sparsity: float | None = _setting(0.5, *_OPTIONAL_NUMBER)  # None: no pruning stage (range: check_consistency)
    epochs: int = _setting(3, int)


@dataclass
class QatSettings:
    enabled: bool = _setting(True, bool)
    epochs: int = _setting(3, int)
    preserve_sparsity: bool = _setting(True, bool)


@dataclass
class ExportSettings:
    modes: list = _setting(["fp32", "int8"], list)
    io: str = _setting(DEFAULT_IO, str)
    target: str = _setting("cpu", str)


@dataclass
class ParitySettings:
    max_disagreement: float | None = _setting(0.02, *_OPTIONAL_NUMBER, low=0, high=1)
    max_accuracy_drop: float | None = _setting(1.0, *_OPTIONAL_NUMBER, low=0)


@dataclass
class BenchmarkSettings:
    threads: int = _setting(2, int, low=1)
    formats: list | None = _setting(None, list, type(None))


@dataclass
class DeploySettings:
    """Which exported file `pipeline` and `benchmark` recommend (deploy.json), from the measured table: among
    the files measured on ``target`` that pass both gates, the smallest or the fastest (edgecnn/deploy.py)."""

    prefer: str = _setting("smallest", str)  # smallest | fastest (lowest measured p50 latency)
    target: str | None = _setting(None, str, type(None))  # cpu | gpu | edgetpu; null: export.target
    # Percentage points below the float model's test accuracy; null: parity.max_accuracy_drop.
    max_accuracy_drop: float | None = _setting(None, *_OPTIONAL_NUMBER, low=0)
    # Share of test images whose top-1 differs from the float model's; null: parity.max_disagreement.
    max_disagreement: float | None = _setting(None, *_OPTIONAL_NUMBER, low=0, high=1)


def _section(cls):
    return field(default_factory=cls, metadata={"section": True})


@dataclass
class Recipe:
    """A resolved recipe: every section, every key, checked."""

    name: str = _setting("custom", str)
    description: str = _setting("", str)
    model: ModelSettings = _section(ModelSettings)
    input: InputSettings = _section(InputSettings)
    data: DataSettings = _section(DataSettings)
    train: TrainSettings = _section(TrainSettings)
    prune: PruneSettings = _section(PruneSettings)
    qat: QatSettings = _section(QatSettings)
    export: ExportSettings = _section(ExportSettings)
    parity: ParitySettings = _section(ParitySettings)
    benchmark: BenchmarkSettings = _section(BenchmarkSettings)
    deploy: DeploySettings = _section(DeploySettings)
    # What `edgecnn train` recorded about the run (data, data_root, builtin, labels, num_classes, flip,
    # mixed_precision, strategy, edgecnn_version): provenance the tool writes and reads back, never
    # part of a recipe file a user writes, so it stays a plain mapping (see RUN_SECTION).
    run: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The YAML form (recipe.yaml, model metadata); ``run`` only when there is one."""
        data = dataclasses.asdict(self)
        if not data["run"]:
            del data["run"]
        return data

    def flat(self) -> dict[str, object]:
        """Every section key by its dotted name: {"train.epochs": 30, ...}."""
        return {f"{section}.{key}": getattr(getattr(self, section), key)
                for section in SECTIONS for key in section_keys(section)}


# section name -> its settings class, and the top-level keys with their types: all read off Recipe.
SECTIONS: dict[str, type] = {f.name: f.default_factory for f in dataclasses.fields(Recipe) if f.metadata.get("section")}
TOP_LEVEL: dict[str, tuple[type, ...]] = {f.name: f.metadata["types"] for f in dataclasses.fields(Recipe)
                                          if "types" in f.metadata}
# The run section of a run directory's recipe.yaml (see Recipe.run).
RUN_SECTION = "run"


def section_keys(section: str) -> list[str]:
    return [f.name for f in dataclasses.fields(SECTIONS[section])]


def _key_metadata(section: str, key: str):
    return next(f.metadata for f in dataclasses.fields(SECTIONS[section]) if f.name == key)


def _check_value(name: str, value, section: str, key: str, source: str, option: str = "") -> None:
    """Type, then (a number) finite and in range: the same check for YAML values and command-line overrides.

    ``option``: the command-line option a range error names instead of ``source: name``.
    """
    metadata = _key_metadata(section, key)
    _check_type(name, value, metadata["types"], source)
    if "range" in metadata and value is not None:
        check_number(option or name, value, metadata["range"], "" if option else source)


def default_value(dotted: str):
    """The default of a recipe key (``"train.lr"``): what a recipe that leaves it out gets."""
    value = default_recipe()
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def default_recipe() -> Recipe:
    return Recipe()


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


def load_recipe(path) -> Recipe:
    """Read, check and complete a recipe file (or a built-in recipe's name)."""
    path = find_recipe(path)
    try:
        raw = unique_yaml.load(path.read_text(encoding="utf-8"))
    except unique_yaml.DuplicateKey as exc:
        raise RecipeError(f"recipe {path}: key {exc.key} is given twice (lines {exc.first_line} and "
                          f"{exc.second_line}); keep one of them") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise RecipeError(f"recipe {path} is not valid YAML{where}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"recipe {path} must be a YAML mapping of sections (model, train, ...)")
    recipe = resolve(raw, source=str(path))
    if recipe.name == Recipe.name:
        recipe.name = path.stem
    return recipe


def resolve(raw: dict, source: str = "recipe", *, saved: bool = False) -> Recipe:
    """Defaults completed with ``raw``, every key and type checked.

    ``saved``: ``raw`` is a run directory's recipe.yaml, which may hold the run section.
    """
    recipe = default_recipe()
    for section, value in raw.items():
        if section in TOP_LEVEL:
            _check_type(f"{section}", value, TOP_LEVEL[section], source)
            setattr(recipe, section, value)
            continue
        if section not in SECTIONS and not (saved and section == RUN_SECTION):
            raise RecipeError(f"{source}: unknown section {section!r}{closest(section, [*SECTIONS, *TOP_LEVEL])}")
        if not isinstance(value, dict):
            raise RecipeError(f"{source}: section {section!r} must be a mapping of keys, got {type(value).__name__}")
        if section == RUN_SECTION:
            recipe.run = copy.deepcopy(value)
            continue
        keys = section_keys(section)
        for key, item in value.items():
            if key not in keys:
                raise RecipeError(
                    f"{source}: unknown key {section}.{key}{closest(key, keys)}; known keys: {', '.join(keys)}"
                )
            _check_value(f"{section}.{key}", item, section, key, source)
            if saved and (section, key) == ("benchmark", "formats") and item:
                item = [RENAMED_FORMATS.get(name, name) for name in item]  # an older run's names (formats.py)
            setattr(getattr(recipe, section), key, copy.deepcopy(item))
    check_consistency(recipe, source)
    return recipe


def apply_overrides(recipe: Recipe, overrides: dict[str, object]) -> Recipe:
    """A copy of ``recipe`` with dotted overrides (``{"train.epochs": 5}``) from the command line."""
    result = copy.deepcopy(recipe)
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or key not in section_keys(section):
            raise RecipeError(f"unknown recipe key {dotted!r}")
        # Named as the option a user typed: "--lr must be a finite number > 0, got nan".
        _check_value(dotted, value, section, key, "command line", option=f"--{key.replace('_', '-')}")
        setattr(getattr(result, section), key, value)
    check_consistency(result, "recipe with command-line overrides")
    return result


def check_consistency(recipe: Recipe, source: str) -> None:
    """Settings that are each valid but contradict one another."""
    export = recipe.export
    check_recipe_export(export.modes, export.io, export.target, source)
    sparsity = recipe.prune.sparsity
    if sparsity is not None and not 0 < sparsity < 1:
        raise RecipeError(f"{source}: prune.sparsity must be between 0 and 1 (exclusive) or null to skip pruning, got {sparsity}")
    _check_normalization(recipe.input, source)
    check_deploy_settings(recipe.deploy, source)
    check_recipe_formats(recipe.benchmark.formats, source)
    if not 0 < recipe.data.val_fraction + recipe.data.test_fraction < 0.9:
        raise RecipeError(f"{source}: data.val_fraction + data.test_fraction must be between 0 and 0.9")
    for key in ("epochs", "batch_size"):
        if getattr(recipe.train, key) is not None and getattr(recipe.train, key) < 1:
            raise RecipeError(f"{source}: train.{key} must be at least 1, got {getattr(recipe.train, key)}")


def _check_normalization(settings: InputSettings, source: str) -> None:
    """input.mean and input.std: 1 or 3 finite numbers (one per channel), std > 0."""
    limits = {"mean": NumberRange(), "std": NumberRange(low=0, low_open=True)}
    for key, values in (("mean", settings.mean), ("std", settings.std)):
        if not isinstance(values, list) or len(values) not in (1, 3):
            raise RecipeError(f"{source}: input.{key} must be a list of 1 or 3 numbers (one per channel), got {values!r}")
        for value in values:
            if not limits[key].contains(value):
                raise RecipeError(f"{source}: input.{key} must be a list of 1 or 3 numbers, each "
                                  f"{limits[key].describe()}, got {values!r}")


def differences(saved: Recipe, wanted: Recipe) -> list[str]:
    """Dotted keys whose values differ between two resolved recipes (for --resume)."""
    ours, theirs = saved.flat(), wanted.flat()
    return [f"{key}: run has {ours[key]!r}, recipe has {theirs[key]!r}" for key in ours if ours[key] != theirs[key]]


def _check_type(name: str, value, types: tuple[type, ...], source: str) -> None:
    # bool is an int in Python; a recipe that says `epochs: true` is a mistake, not 1.
    if isinstance(value, bool) and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        wanted = " or ".join("null" if t is type(None) else t.__name__ for t in types)
        raise RecipeError(f"{source}: {name} must be {wanted}, got {type(value).__name__} {value!r}")
