"""Transfer learning end to end: a backbone trained here on one built-in dataset, fine-tuned on another,
then pruned, quantization-aware trained and exported to int8 with the parity gate on."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.training.fit.phases import FINETUNE, WARMUP
from edgecnn.training.fit.train import train_run
from edgecnn.training.models.model_io import load_keras_model
from edgecnn.training.models.pretrained import backbone_layers

SMALL = {"model": "mobilenet_v1_tiny", "size": 16, "batch_size": 32, "augment": False, "seed": 0}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """The "pretrained" backbone: edgecnn's tiny model trained on the built-in shapes."""
    return train_run("shapes", tmp_path_factory.mktemp("base") / "run", epochs=3, log=lambda m: None, **SMALL)


def _weights_by_layer(model, names):
    return {name: [w.copy() for w in model.get_layer(name).get_weights()] for name in names}


def test_warm_up_trains_the_new_head_on_the_source_backbone(base_run, tmp_path):
    logged = []
    run = train_run("digits", tmp_path / "warm", epochs=1, weights=str(base_run.path), log=logged.append, **SMALL)
    base, tuned = load_keras_model(base_run.float_model), load_keras_model(run.float_model)
    names = [n for n in backbone_layers(tuned) if tuned.get_layer(n).get_weights()]
    assert len(names) > 10
    # One epoch is all warm-up: the backbone is exactly the source's, frozen; the head is new and trained.
    for name, weights in _weights_by_layer(base, names).items():
        for saved, got in zip(weights, tuned.get_layer(name).get_weights()):
            np.testing.assert_array_equal(saved, got, err_msg=name)
    assert tuned.output_shape[-1] == 10 and base.output_shape[-1] != 10  # digits head, not the shapes head
    assert any(line.startswith("warmup: epochs 1-1") for line in logged)
    history = json.loads(run.history.read_text())
    assert [row["phase"] for row in history["epochs"]] == [WARMUP]


def test_fine_tuned_model_goes_through_prune_qat_and_int8_with_parity(base_run, tmp_path):
    logged = []
    run = train_run("digits", tmp_path / "ft", epochs=6, weights=str(base_run.path), log=logged.append, **SMALL)
    history = json.loads(run.history.read_text())
    phases = [row["phase"] for row in history["epochs"]]
    assert phases[0] == WARMUP and phases[-1] == FINETUNE and phases == sorted(phases, key=[WARMUP, FINETUNE].index)
    assert history["transfer"]["weights"] == str(base_run.path.resolve())
    assert any(line.startswith("finetune: epochs") for line in logged)
    assert history["best_val_accuracy"] > 0.6, history["epochs"][-1]  # seen: 0.87 after 6 epochs

    runner = CliRunner()
    gated = runner.invoke(cli, ["export", str(run.path), "--quantize", "int8", "--from", "float",
                                "--max-accuracy-drop", "1.5", "--out", str(tmp_path / "ptq.tflite")])
    assert gated.exit_code == 0, gated.output  # seen: +0.00 pp
    assert (tmp_path / "ptq.tflite").is_file() and (run.path / "parity_ptq.json").is_file()
    for command in (["prune", str(run.path), "--sparsity", "0.5", "--epochs", "1"],
                    ["qat", str(run.path), "--epochs", "1", "--preserve-sparsity"],
                    ["export", str(run.path), "--quantize", "int8", "--target", "edgetpu"]):
        done = runner.invoke(cli, command)
        assert done.exit_code == 0, done.output
    report = json.loads((run.path / "parity_pruned_qat_int8.json").read_text())
    assert report["num_samples"] > 0 and (run.path / "model_pruned_qat_int8.tflite").is_file()


def test_a_missing_weights_source_is_one_line_and_touches_nothing(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", "digits", "--out", str(out), "--weights", str(tmp_path / "nope")])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: --weights") and len(result.output.strip().splitlines()) == 1
    assert not out.exists()
