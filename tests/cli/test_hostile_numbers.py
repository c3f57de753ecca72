"""Hostile numbers (NaN, inf, negative, absurd) are refused before any work, with one line and exit code 2.

Each case ran (or half ran) before: NaN learning rates trained and left NaN in state.json, NaN gates
passed every report, --duration nan ran zero frames, --size 100000 died allocating 894 GiB.
"""

from __future__ import annotations

import math

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import DataError, RecipeError
from edgecnn.numbers import NumberRange, check_number
from edgecnn.parity.gates import validate_gates
from edgecnn.recipe import apply_overrides, default_recipe, load_recipe


def _one_line_error(result, message: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert result.output.strip() == f"Error: {message}"
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, message", [
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--lr", "-1"], "--lr must be a finite number > 0, got -1"),
    (["--label-smoothing", "2"], "--label-smoothing must be a finite number in [0, 1), got 2"),
    (["--label-smoothing", "nan"], "--label-smoothing must be a finite number in [0, 1), got nan"),
    (["--alpha", "0"], "--alpha must be a finite number > 0, got 0"),
    (["--depth", "nan"], "--depth must be a finite number > 0, got nan"),
    (["--size", "100000"], ("--size must be a whole number between 8 and 1024, got 100000; "
                           "edgecnn trains inputs of 8 to 1024 pixels (model_sizes.py)")),
])
def test_train_refuses_hostile_numbers_before_touching_the_run_directory(tmp_path, args, message):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "--out", str(out), *args])
    _one_line_error(result, message)
    assert not out.exists()


def test_refused_alpha_leaves_no_unfinished_run_so_a_fixed_rerun_is_not_blocked(tmp_path):
    out = tmp_path / "run"
    for _ in range(2):  # the re-run used to say "holds an unfinished run"
        result = CliRunner().invoke(cli, ["train", "digits", "--out", str(out), "--alpha", "0"])
        _one_line_error(result, "--alpha must be a finite number > 0, got 0")
        assert not out.exists()


@pytest.mark.parametrize("yaml_text, message", [
    ("train: {lr: .nan}\n", "train.lr must be a finite number > 0, got nan"),
    ("train: {lr: -.inf}\n", "train.lr must be a finite number > 0, got -inf"),
    ("model: {size: 100000}\n", ("model.size must be a whole number between 8 and 1024, got 100000; "
                                "edgecnn trains inputs of 8 to 1024 pixels (model_sizes.py)")),
    ("input: {mean: [\"a\"]}\n", "input.mean must be a list of 1 or 3 numbers, each a finite number, got ['a']"),
    ("input: {std: [0, 1, 1]}\n", "input.std must be a list of 1 or 3 numbers, each a finite number > 0, got [0, 1, 1]"),
    ("input: {std: [1, 1]}\n", "input.std must be a list of 1 or 3 numbers (one per channel), got [1, 1]"),
    ("parity: {max_disagreement: .nan}\n", "parity.max_disagreement must be a finite number between 0 and 1, got nan"),
    ("parity: {max_accuracy_drop: -1}\n", "parity.max_accuracy_drop must be a finite number >= 0, got -1"),
])
def test_recipe_files_with_hostile_numbers_fail_at_load(tmp_path, yaml_text, message):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml_text)
    out = tmp_path / "run"
    for command in (["train", "digits", "--recipe", str(recipe), "--out", str(out)],
                    ["pipeline", str(recipe), "--data", "digits", "--out", str(out)]):
        result = CliRunner().invoke(cli, command)
        _one_line_error(result, f"{recipe}: {message}")
        assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_parity_refuses_nan_and_negative_accuracy_drop_gates(tmp_path, value):
    result = CliRunner().invoke(cli, ["parity", "a.tflite", "b.tflite", "--data", str(tmp_path),
                                      "--max-accuracy-drop", value])
    _one_line_error(result, f"--max-accuracy-drop is in percentage points and must be >= 0 and finite, got {float(value)}")


@pytest.mark.parametrize("value", ["nan", "inf", "1.5"])
def test_parity_refuses_nan_disagreement_gates(tmp_path, value):
    result = CliRunner().invoke(cli, ["parity", "a.tflite", "b.tflite", "--data", str(tmp_path),
                                      "--max-disagreement", value])
    _one_line_error(result, f"--max-disagreement is a fraction between 0 and 1 (0.01 = 1%), got {float(value)}")


@pytest.mark.parametrize("option, message", [
    ("--max-accuracy-drop", "--max-accuracy-drop is in percentage points and must be >= 0 and finite, got nan"),
    ("--max-disagreement", "--max-disagreement is a fraction between 0 and 1 (0.01 = 1%), got nan"),
])
def test_export_refuses_nan_gates(tmp_path, option, message):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "run"), "--quantize", "int8", option, "nan"])
    _one_line_error(result, message)


@pytest.mark.parametrize("gates", [{"max_disagreement": math.nan}, {"max_accuracy_drop": math.nan},
                                   {"max_accuracy_drop": math.inf}])
def test_library_validate_gates_refuses_nan(gates):
    with pytest.raises(DataError):
        validate_gates(**gates)


@pytest.mark.parametrize("args, message", [
    (["--duration", "nan"], "--duration must be a finite number > 0, got nan"),
    (["--duration", "-5"], "--duration must be a finite number > 0, got -5"),
    (["--duration", "soon"], "--duration must be a finite number > 0, got 'soon'"),
    (["--threshold", "nan"], "--threshold must be a finite number between 0 and 1, got nan"),
    (["--smoothing", "1"], "--smoothing must be a finite number in [0, 1), got 1"),
])
def test_run_refuses_hostile_numbers(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "m.tflite"), "--source", str(tmp_path), *args])
    _one_line_error(result, message)


def test_overrides_and_yaml_go_through_the_same_range_check(tmp_path):
    with pytest.raises(RecipeError, match=r"^--lr must be a finite number > 0, got nan$"):
        apply_overrides(default_recipe(), {"train.lr": math.nan})
    (tmp_path / "r.yaml").write_text("train: {lr: 0.01, label_smoothing: 0.1}\nmodel: {size: 1024}\n")
    recipe = load_recipe(tmp_path / "r.yaml")
    assert (recipe.train.lr, recipe.model.size) == (0.01, 1024)


def test_number_range_describes_itself():
    assert NumberRange(0, 1, high_open=True).describe() == "a finite number in [0, 1)"
    assert NumberRange(1, integer=True).describe() == "a whole number >= 1"
    with pytest.raises(RecipeError, match=r"^src: x must be a finite number <= 2, got nan$"):
        check_number("x", math.nan, NumberRange(high=2), "src")


@pytest.mark.parametrize("command", ["prune", "qat"])
def test_prune_and_qat_refuse_a_nan_learning_rate(tmp_path, command):
    result = CliRunner().invoke(cli, [command, str(tmp_path / "run"), "--lr", "nan"])
    _one_line_error(result, "--lr must be a finite number > 0, got nan")


@pytest.mark.parametrize("command", [["run", "m.tflite"], ["parity", "a.tflite", "b.tflite", "--data", "."],
                                     ["export", "run"]])
@pytest.mark.parametrize("option, value, message", [
    ("--mean", "nan", ("--mean must be 1 or 3 comma-separated numbers (one per channel), each a finite number, "
                      "got 'nan'")),
    ("--mean", "1,2", ("--mean must be 1 or 3 comma-separated numbers (one per channel), each a finite number, "
                      "got '1,2'")),
    ("--std", "0", "--std must be 1 or 3 comma-separated numbers (one per channel), each a finite number > 0, got '0'"),
    ("--std", "x", "--std 'x' is not a number; give numbers separated by commas, e.g. --std 127.5,127.5,127.5"),
])
def test_mean_and_std_options_refuse_hostile_numbers(tmp_path, command, option, value, message):
    result = CliRunner().invoke(cli, [*command, option, value])
    _one_line_error(result, message)
