"""Recipe loading: every key and type checked up front, overrides, and --resume diffs."""

import pytest

from edgecnn.errors import RecipeError
from edgecnn.recipe import apply_overrides, default_recipe, differences, load_recipe, resolve


def write(tmp_path, text):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_defaults_fill_a_minimal_recipe(tmp_path):
    recipe = load_recipe(write(tmp_path, "model:\n  architecture: mobilenet_v2\n  size: 64\n"))
    assert recipe.model.architecture == "mobilenet_v2"
    assert recipe.model.size == 64
    assert recipe.train.epochs == default_recipe().train.epochs
    assert recipe.name == "r"


def test_unknown_key_names_it_and_suggests_the_closest(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown key train\.epocs \(did you mean 'epochs'\?\)"):
        load_recipe(write(tmp_path, "train:\n  epocs: 3\n"))


def test_unknown_section_suggests_the_closest(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown section 'modle' \(did you mean 'model'\?\)"):
        load_recipe(write(tmp_path, "modle:\n  size: 3\n"))


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: five\n", r"train\.epochs must be int or null, got str 'five'"),
    ("train:\n  epochs: true\n", r"train\.epochs must be int or null, got bool"),
    ("model:\n  size: 9.5\n", r"model\.size must be int, got float"),
    ("prune:\n  sparsity: [0.5]\n", r"prune\.sparsity must be int or float or null"),
])
def test_wrong_types_are_refused(tmp_path, text, message):
    with pytest.raises(RecipeError, match=message):
        load_recipe(write(tmp_path, text))


def test_edgetpu_with_float_export_is_a_conflict(tmp_path):
    text = "export:\n  target: edgetpu\n  modes: [fp32, int8]\n"
    with pytest.raises(RecipeError, match=r"edgetpu needs full-integer models.*\['fp32'\]"):
        load_recipe(write(tmp_path, text))


def test_edgetpu_with_float_io_is_a_conflict(tmp_path):
    with pytest.raises(RecipeError, match="edgetpu needs integer input/output"):
        load_recipe(write(tmp_path, "export:\n  target: edgetpu\n  modes: [int8]\n  io: float32\n"))


def test_sparsity_out_of_range(tmp_path):
    with pytest.raises(RecipeError, match="prune.sparsity must be between 0 and 1"):
        load_recipe(write(tmp_path, "prune:\n  sparsity: 1.5\n"))


def test_invalid_yaml_says_where(tmp_path):
    with pytest.raises(RecipeError, match=r"not valid YAML at line \d+; fix the syntax"):
        load_recipe(write(tmp_path, "model:\n  size: [1\n"))


def test_missing_recipe_file(tmp_path):
    with pytest.raises(RecipeError, match="does not exist"):
        load_recipe(tmp_path / "nope.yaml")


def test_overrides_replace_values_and_are_type_checked():
    recipe = resolve({})
    changed = apply_overrides(recipe, {"train.epochs": 2, "model.size": None})
    assert changed.train.epochs == 2
    assert changed.model.size == recipe.model.size
    assert recipe.train.epochs != 2  # the input is not mutated
    with pytest.raises(RecipeError, match="train.epochs must be int"):
        apply_overrides(recipe, {"train.epochs": "2"})


def test_differences_list_what_changed():
    a = resolve({})
    b = apply_overrides(a, {"train.epochs": 3, "model.alpha": 0.5})
    diffs = differences(a, b)
    assert len(diffs) == 2
    assert any(d.startswith("train.epochs: run has None, recipe has 3") for d in diffs)
    assert differences(a, a) == []


def test_every_shipped_recipe_loads_and_models_links_to_it():
    from pathlib import Path

    from edgecnn.recipe import builtin_recipe_names

    names = builtin_recipe_names()
    assert {"mobilenet_v1_tiny_64", "mobilenet_v1_025_96", "mobilenet_v2_035_128",
            "edgetpu_mobilenet_v1_050_128", "digits_demo"} <= set(names)
    models = Path(__file__).parents[1] / "models"
    for name in names:
        assert load_recipe(name).name == name
        assert load_recipe(models / f"{name}.yaml").name == name


def test_recipe_names_are_suggested():
    with pytest.raises(RecipeError, match=r"recipe digits_dmo does not exist \(did you mean 'digits_demo'\?\)"):
        load_recipe("digits_dmo")


# --- one typed recipe: defaults once, round trip, old runs ----------------------------------------

def _help_text(command: str) -> str:
    from click.testing import CliRunner

    from edgecnn.cli import cli

    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # click wraps long help lines


@pytest.mark.parametrize("dotted", ["model.architecture", "model.size", "train.batch_size",
                                    "train.lr", "train.label_smoothing", "train.patience", "data.seed"])
def test_train_help_shows_the_dataclass_default(dotted):
    import dataclasses

    from edgecnn.recipe import SECTIONS

    section, key = dotted.split(".")
    field = next(f for f in dataclasses.fields(SECTIONS[section]) if f.name == key)
    assert f"default {field.default}" in _help_text("train")


def test_train_help_names_the_auto_epochs_rule():
    from edgecnn.recipe import default_recipe
    from edgecnn.training.fit.schedule import AUTO_MIN_EPOCHS, AUTO_MIN_STEPS

    assert default_recipe().train.epochs is None
    assert f"default: auto, at least {AUTO_MIN_EPOCHS} epochs and {AUTO_MIN_STEPS} steps" in _help_text("train")


def test_other_help_defaults_come_from_the_recipe():
    from edgecnn.recipe import default_recipe

    recipe = default_recipe()
    assert f"Default: the run's recipe ({recipe.prune.sparsity})" in _help_text("prune")
    assert f"Default: the recipe's export.io ({recipe.export.io})" in _help_text("export")
    assert f"Default: the recipe's benchmark.threads ({recipe.benchmark.threads})" in _help_text("benchmark")


def test_no_second_copy_of_the_defaults():
    """run_inputs' own fallbacks (lr 0.002 against the recipe's 0.004) and SCHEMA are gone; no module repeats lr."""
    import ast
    from pathlib import Path

    import edgecnn
    import edgecnn.recipe
    from edgecnn.training.data import run_inputs

    assert not hasattr(run_inputs, "train_learning_rate") and not hasattr(run_inputs, "batch_size")
    assert not hasattr(edgecnn.recipe, "SCHEMA")
    lr = default_recipe().train.lr
    root = Path(edgecnn.__file__).parent
    repeats = [str(path.relative_to(root)) for path in root.rglob("*.py") if path.name != "recipe.py"
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, ast.Constant) and isinstance(node.value, float) and node.value in (lr, lr / 2)]
    assert repeats == []


def test_run_recipe_round_trips_through_yaml(tmp_path):
    import yaml

    from edgecnn.rundir import RunDir

    recipe = resolve({"model": {"size": 32}, "export": {"modes": ["int8"], "io": "uint8"}})
    recipe.run.update(data="digits", num_classes=10, labels=[str(i) for i in range(10)])
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
    again = RunDir(tmp_path).load_recipe()
    assert again == recipe and differences(again, recipe) == []
    assert again.run["num_classes"] == 10
    # A user's recipe file has no run section: that is the run directory's provenance.
    with pytest.raises(RecipeError, match="unknown section 'run'"):
        resolve({"run": {"data": "digits"}})


def test_old_run_without_keys_loads_with_the_defaults_and_one_learning_rate(tmp_path):
    """A recipe.yaml without train.lr: training, pruning and QAT all start from the recipe's one default."""
    from edgecnn.rundir import RunDir
    from edgecnn.training.data.run_inputs import fine_tune
    from edgecnn.training.fit.train import _with_overrides
    from edgecnn.training.optimize.prune import FINE_TUNE_LR_FACTOR
    from edgecnn.training.optimize.qat import QAT_LR_FACTOR

    (tmp_path / "recipe.yaml").write_text("model:\n  size: 32\nrun:\n  data: digits\n")
    saved = RunDir(tmp_path).load_recipe()
    lr = default_recipe().train.lr
    assert saved.train.lr == lr and saved.qat.epochs == default_recipe().qat.epochs
    assert _with_overrides(saved, {}).train.lr == lr
    prune = fine_tune(saved, "prune", lr_factor=FINE_TUNE_LR_FACTOR)
    qat = fine_tune(saved, "qat", lr_factor=QAT_LR_FACTOR)
    assert prune.learning_rate == pytest.approx(lr * FINE_TUNE_LR_FACTOR)
    assert qat.learning_rate == pytest.approx(lr * QAT_LR_FACTOR)
    assert (prune.epochs, prune.batch_size) == (saved.prune.epochs, saved.train.batch_size)
    assert fine_tune(saved, "qat", lr_factor=QAT_LR_FACTOR, epochs=7, learning_rate=0.5) == \
        type(qat)(epochs=7, batch_size=saved.train.batch_size, learning_rate=0.5)


# --- range boundaries the mutation score (tools/mutation_score.sh) found untested ---------------------

@pytest.mark.parametrize("text, message", [
    ("prune:\n  sparsity: 0\n", r"prune\.sparsity must be between 0 and 1 \(exclusive\) or null to skip pruning, got 0"),
    ("prune:\n  sparsity: 1\n", r"prune\.sparsity must be between 0 and 1 \(exclusive\).*got 1"),
    ("data:\n  val_fraction: 0\n  test_fraction: 0\n", r"data\.val_fraction \+ data\.test_fraction must be between 0 and 0\.9"),
    ("data:\n  val_fraction: 0.45\n  test_fraction: 0.45\n", r"data\.val_fraction \+ data\.test_fraction must be between"),
    ("train:\n  epochs: 0\n", r"train\.epochs must be at least 1, got 0"),
    ("train:\n  batch_size: 0\n", r"train\.batch_size must be at least 1, got 0"),
    ("input:\n  mean: [1, 2]\n", r"input\.mean must be a list of 1 or 3 numbers \(one per channel\), got \[1, 2\]"),
    ("input:\n  std: [1, 0, 1]\n", r"input\.std must be a list of 1 or 3 numbers, each .*, got \[1, 0, 1\]"),
    ("input:\n  std: [-1]\n", r"input\.std must be a list of 1 or 3 numbers, each"),
])
def test_out_of_range_settings_name_the_file_the_key_and_the_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(RecipeError, match=rf"^{path}: .*{message}"):
        load_recipe(path)


@pytest.mark.parametrize("text", [
    "prune:\n  sparsity: 0.01\n", "prune:\n  sparsity: 0.99\n", "prune:\n  sparsity: null\n",
    "data:\n  val_fraction: 0.44\n  test_fraction: 0.45\n", "data:\n  val_fraction: 0.01\n  test_fraction: 0\n",
    "train:\n  epochs: 1\n  batch_size: 1\n",
    "input:\n  mean: [0]\n  std: [0.5]\n", "input:\n  mean: [-10, 0, 10]\n  std: [0.5, 1, 2]\n",
])
def test_the_nearest_valid_settings_load(tmp_path, text):
    load_recipe(write(tmp_path, text))
