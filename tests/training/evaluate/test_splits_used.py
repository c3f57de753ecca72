"""`evaluate --split` and `benchmark` use the images split.json names for that split, checked image by image.

The tiny run's splits are stratified (27 images of every class in both val and test), so counts alone
cannot tell them apart. Each test rewrites a copy's split.json so that the splits hold different classes:
test only 3s and 7s, val only 1s. The classes a report counts then say which split it read.
"""

import json
import shutil
from collections import Counter

import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.rundir import RunDir

pytestmark = pytest.mark.slow  # the shared tiny run is trained with TensorFlow

FAST = ["--runs", "3", "--warmup", "1", "--threads", "1"]


@pytest.fixture
def split_run(tiny_run, tmp_path):
    run = RunDir(shutil.copytree(tiny_run.path, tmp_path / "run"))
    split = json.loads(run.split.read_text())
    labels = run.labels()
    split["test"] = [item for item in split["test"] if labels[item[1]] in ("3", "7")]
    split["val"] = [item for item in split["val"] if labels[item[1]] == "1"]
    run.split.write_text(json.dumps(split))
    expected = {name: Counter(labels[label] for _, label in split[name]) for name in ("test", "val")}
    assert expected["test"]["3"] > 0 and expected["test"]["7"] > 0 and set(expected["val"]) == {"1"}
    return run, expected


def _supports(report) -> dict:
    return {label: row["support"] for label, row in report["per_class"].items() if row["support"]}


@pytest.mark.parametrize("split", ["test", "val"])
def test_evaluate_reads_the_split_it_is_asked_for(split_run, split):
    run, expected = split_run
    result = CliRunner().invoke(cli, ["evaluate", str(run.path), "--split", split, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == split and report["num_samples"] == sum(expected[split].values())
    assert _supports(report) == dict(expected[split])


def test_benchmark_measures_on_the_test_split(split_run):
    run, expected = split_run
    result = CliRunner().invoke(cli, ["benchmark", str(run.path), "--formats", "keras", *FAST, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["test_images"] == sum(expected["test"].values())
