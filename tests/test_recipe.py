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
    assert recipe["model"]["architecture"] == "mobilenet_v2"
    assert recipe["model"]["size"] == 64
    assert recipe["train"]["epochs"] == default_recipe()["train"]["epochs"]
    assert recipe["name"] == "r"


def test_unknown_key_names_it_and_suggests_the_closest(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown key train\.epocs \(did you mean 'epochs'\?\)"):
        load_recipe(write(tmp_path, "train:\n  epocs: 3\n"))


def test_unknown_section_suggests_the_closest(tmp_path):
    with pytest.raises(RecipeError, match=r"unknown section 'modle' \(did you mean 'model'\?\)"):
        load_recipe(write(tmp_path, "modle:\n  size: 3\n"))


@pytest.mark.parametrize("text, message", [
    ("train:\n  epochs: five\n", r"train\.epochs must be int, got str 'five'"),
    ("train:\n  epochs: true\n", r"train\.epochs must be int, got bool"),
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
    assert changed["train"]["epochs"] == 2
    assert changed["model"]["size"] == recipe["model"]["size"]
    assert recipe["train"]["epochs"] != 2  # the input is not mutated
    with pytest.raises(RecipeError, match="train.epochs must be int"):
        apply_overrides(recipe, {"train.epochs": "2"})


def test_differences_list_what_changed():
    a = resolve({})
    b = apply_overrides(a, {"train.epochs": 3, "model.alpha": 0.5})
    diffs = differences(a, b)
    assert len(diffs) == 2
    assert any(d.startswith("train.epochs: run has 30, recipe has 3") for d in diffs)
    assert differences(a, a) == []


def test_every_shipped_recipe_loads_and_models_links_to_it():
    from pathlib import Path

    from edgecnn.recipe import builtin_recipe_names

    names = builtin_recipe_names()
    assert {"mobilenet_v1_tiny_64", "mobilenet_v1_025_96", "mobilenet_v2_035_128",
            "edgetpu_mobilenet_v1_050_128", "digits_demo"} <= set(names)
    models = Path(__file__).parents[1] / "models"
    for name in names:
        assert load_recipe(name)["name"] == name
        assert load_recipe(models / f"{name}.yaml")["name"] == name


def test_recipe_names_are_suggested():
    with pytest.raises(RecipeError, match=r"recipe digits_dmo does not exist \(did you mean 'digits_demo'\?\)"):
        load_recipe("digits_dmo")
