"""A recipe with a key given twice is refused with the key and both lines (issue 14).

Before, PyYAML kept the last value and said nothing: `lr: 0.01` on one line and `lr: 5` further
down trained at 5.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.unique_yaml import DuplicateKey, load

RECIPE = """\
model:
  architecture: mobilenet_v1_tiny
  size: 16
train:
  epochs: 1
  lr: 0.01
  batch_size: 32
  lr: 5
"""


def test_train_with_a_duplicated_recipe_key_names_it_and_both_lines_before_any_work(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "--out", str(out), "--recipe", str(recipe)])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (f"Error: recipe {recipe}: key train.lr is given twice (lines 6 and 8); "
                                     "keep one of them")
    assert "Traceback" not in result.output
    assert not out.exists()


def test_duplicate_section_and_quoted_spelling_count_as_the_same_key():
    with pytest.raises(DuplicateKey) as caught:
        load('train: {epochs: 1}\nmodel: {size: 16}\n"train": {lr: 0.1}\n')
    assert (caught.value.key, caught.value.first_line, caught.value.second_line) == ("train", 1, 3)


def test_keys_in_different_sections_and_merge_overrides_are_not_duplicates():
    text = "base: &b {lr: 0.1, epochs: 2}\ntrain:\n  <<: *b\n  lr: 0.5\nprune: {epochs: 3}\n"
    assert load(text)["train"] == {"lr": 0.5, "epochs": 2}


def test_duplicates_inside_lists_of_mappings_are_found():
    with pytest.raises(DuplicateKey) as caught:
        load("stages:\n  - {name: a}\n  - name: b\n    name: c\n")
    assert (caught.value.key, caught.value.first_line, caught.value.second_line) == ("stages[1].name", 3, 4)
