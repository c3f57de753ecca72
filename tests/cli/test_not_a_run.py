"""A data folder given where a RUN belongs is named as such; no command suggests writing into it (issue 14).

Before: `evaluate photos/` said "run 'edgecnn train DATA --out photos' first": training into the photos.
Every command that takes a RUN goes through `RunDir.require_run` / `rundir.not_a_run`, checked here one by one.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli


def _photos(tmp_path):
    photos = tmp_path / "photos"
    for label, count in (("cat", 3), ("dog", 2), ("bird", 2)):
        (photos / label).mkdir(parents=True)
        for i in range(count):
            (photos / label / f"{i}.png").write_bytes(b"not decoded here")
    return photos


RUN_COMMANDS = [["evaluate"], ["prune", "--sparsity", "0.5"], ["qat"], ["export"], ["benchmark"], ["explain"]]


@pytest.mark.parametrize("command", RUN_COMMANDS, ids=lambda c: c[0])
def test_a_data_folder_is_named_and_a_run_beside_it_is_suggested(tmp_path, command):
    photos = _photos(tmp_path)
    before = sorted(p.name for p in photos.rglob("*"))
    result = CliRunner().invoke(cli, [command[0], str(photos), *command[1:]])
    assert result.exit_code == 2, result.output
    assert result.output == (f"Error: {photos} is not an edgecnn run: this looks like a data folder with 3 classes "
                             f"(7 images): train it with 'edgecnn train {photos} --out runs/photos'\n")
    assert f"--out {photos}" not in result.output
    assert sorted(p.name for p in photos.rglob("*")) == before  # nothing written into the photos


def test_a_flat_folder_of_images_is_not_offered_as_an_output(tmp_path):
    (tmp_path / "shots").mkdir()
    for i in range(4):
        (tmp_path / "shots" / f"{i}.jpg").write_bytes(b"x")
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path / "shots")])
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {tmp_path / 'shots'} is not an edgecnn run: it holds 4 images but no "
                                    "class folders;")
    assert f"--out {tmp_path / 'shots'}" not in result.output


def test_an_empty_or_missing_folder_may_become_the_run(tmp_path):
    result = CliRunner().invoke(cli, ["evaluate", str(tmp_path)])
    assert result.output == f"Error: {tmp_path} is an empty folder, not a run; create one with 'edgecnn train DATA --out {tmp_path}'\n"
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(cli, ["evaluate", str(missing)])
    assert result.output == f"Error: run directory {missing} does not exist; create it with 'edgecnn train DATA --out {missing}'\n"
