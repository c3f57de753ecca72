"""`inspect` warns about a model whose metadata names fewer labels than it has outputs (issue 14).

`classify` and `run` refuse such a model; `inspect` used to show it without a word.
"""

from __future__ import annotations

import json

from click.testing import CliRunner

from edgecnn.cli import cli
from tests.tflite_models import write_model


def _mismatched(tmp_path):
    # 3 output scores, metadata with 2 labels
    return write_model(tmp_path / "m.tflite", labels=("cat", "dog"), classes=3)


def test_inspect_warns_when_the_metadata_names_two_labels_for_three_outputs(tmp_path):
    path = _mismatched(tmp_path)
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [f"Warning: {path}'s edgecnn metadata names 2 labels but its output has 3 scores: classify "
                        "and run will refuse it; re-export the model, or give them a labels file with 3 lines "
                        "(--labels)"]
    assert "Traceback" not in result.output
    # classify refuses the very same file: the warning describes what really happens
    image = tmp_path / "x.png"
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.full((8, 8, 3), 100, np.uint8))
    refused = CliRunner().invoke(cli, ["classify", str(path), str(image)])
    assert refused.exit_code == 2
    assert "outputs 3 scores but its metadata name 2 classes" in refused.output


def test_inspect_json_carries_the_warning_and_keeps_stdout_parseable(tmp_path):
    path = _mismatched(tmp_path)
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert len(data["warnings"]) == 1 and "names 2 labels but its output has 3 scores" in data["warnings"][0]


def test_a_matching_model_gets_no_warning(tmp_path):
    path = write_model(tmp_path / "ok.tflite", labels=("a", "b", "c"), classes=3)
    result = CliRunner().invoke(cli, ["inspect", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["warnings"] == []
    assert "Warning" not in result.stderr
