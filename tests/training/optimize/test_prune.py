"""Pruning: the schedule reaches its target on short fine-tunes, the right layers are pruned,
the result is really sparse after strip_pruning, and float.keras is never touched."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner
from optimize_helpers import shared_pruned_run

from edgecnn.cli import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_run):
    # `edgecnn prune RUN --sparsity 0.6 --epochs 1 --json` on a copy of the session's trained tiny run.
    return shared_pruned_run(tmp_path_factory, tiny_run.path)


@pytest.fixture(scope="module")
def pruned(run):
    return json.loads((run / "prune_cli_stdout.json").read_text()), (run / "float.sha256").read_text()


def test_prune_reaches_target_sparsity_after_strip(run, pruned):
    report, _ = pruned
    assert report["target_sparsity"] == 0.6
    pruned_rows = [row for row in report["layers"] if row["layer"] in report["pruned_layers"]]
    assert pruned_rows, "no layer was pruned"
    for row in pruned_rows:
        # Magnitude pruning zeroes exactly round(0.6 * n) weights per layer.
        assert row["sparsity"] == pytest.approx(0.6, abs=0.01), row
    assert report["sparsity_of_pruned_layers"] == pytest.approx(0.6, abs=0.01)


def test_stem_classifier_and_depthwise_are_left_dense(pruned):
    report, _ = pruned
    skipped = report["skipped_layers"]
    assert "stem" in skipped and "first convolution" in skipped["stem"]
    assert "logits" in skipped and "classifier" in skipped["logits"]
    depthwise = [row for row in report["layers"] if row["kind"] == "DepthwiseConv2D"]
    assert depthwise and all(row["layer"] in skipped for row in depthwise)
    for row in report["layers"]:
        if row["layer"] in skipped:
            assert row["sparsity"] < 0.05, row


def test_pruned_model_is_a_new_artifact(run, pruned):
    report, float_hash_before = pruned
    assert hashlib.sha256((run / "float.keras").read_bytes()).hexdigest() == float_hash_before
    assert (run / "pruned.keras").is_file()
    saved = json.loads((run / "prune_report.json").read_text())
    assert saved["layers"] == report["layers"]


def test_saved_pruned_model_keeps_its_zeros(run, pruned):
    from edgecnn.training.models.model_io import load_keras_model
    from edgecnn.training.optimize.sparsity import sparsity_by_layer

    report, _ = pruned
    reloaded = sparsity_by_layer(load_keras_model(run / "pruned.keras"))
    for name in report["pruned_layers"]:
        assert reloaded[name] == pytest.approx(0.6, abs=0.01)


@pytest.mark.parametrize("total_steps", [2, 3, 5, 24, 100, 1000, 12345])
def test_schedule_final_mask_update_hits_target(total_steps):
    from edgecnn.training.optimize.prune import plan_schedule

    schedule = plan_schedule(0.5, total_steps)
    assert schedule.end_step < total_steps
    assert (schedule.end_step - schedule.begin_step) % schedule.frequency == 0
    should_prune, sparsity = schedule.to_tfmot()(schedule.end_step)
    assert bool(should_prune) and float(sparsity) == pytest.approx(0.5)


def test_default_frequency_would_never_reach_target_on_a_short_run():
    # The trap the schedule avoids: with frequency=100, a 24-step fine-tune updates the mask
    # only at step 0, where the polynomial schedule's sparsity is still 0.
    import tensorflow_model_optimization as tfmot

    default = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=16)
    updates = [step for step in range(24) if bool(default(step)[0])]
    assert updates == [0] and float(default(0)[1]) == 0.0


@pytest.mark.parametrize("value", ["0", "1", "-0.2", "1.5"])
def test_sparsity_outside_open_interval_is_refused(run, value):
    result = CliRunner().invoke(cli, ["prune", str(run), "--sparsity", value])
    assert result.exit_code == 2
    assert "--sparsity must be between 0 and 1 (exclusive)" in result.output
    assert "Traceback" not in result.output


def test_run_without_trained_model_is_refused(tmp_path, run):
    half = tmp_path / "half"
    half.mkdir()
    (half / "recipe.yaml").write_text((run / "recipe.yaml").read_text())
    result = CliRunner().invoke(cli, ["prune", str(half), "--sparsity", "0.5"])
    assert result.exit_code == 2
    assert "has no float.keras; run 'edgecnn train" in result.output
    assert not (half / "pruned.keras").exists()


def test_missing_run_is_refused(tmp_path):
    result = CliRunner().invoke(cli, ["prune", str(tmp_path / "nowhere"), "--sparsity", "0.5"])
    assert result.exit_code == 2
    assert "does not exist; create it with 'edgecnn train" in result.output


def test_too_few_steps_is_refused():
    from edgecnn.errors import RecipeError
    from edgecnn.training.optimize.prune import plan_schedule

    with pytest.raises(RecipeError, match="at least 2 fine-tune steps"):
        plan_schedule(0.5, 1)
