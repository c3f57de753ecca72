"""The degenerate-model verdict on predictions: one class everywhere, chance level, too few images to decide."""

import math

import numpy as np
import pytest

from edgecnn.training.evaluate.degenerate import CHANCE_ALPHA, ONE_CLASS_SHARE, check_predictions

LABELS = ["cat", "dog"]
BALANCED = np.array([0, 1] * 70)


def test_one_class_everywhere_is_degenerate_and_named():
    verdict = check_predictions(BALANCED, np.ones_like(BALANCED), LABELS, split="train")
    assert verdict.status == "one_class" and verdict.degenerate
    assert (verdict.dominant_label, verdict.dominant_share, verdict.accuracy) == ("dog", 1.0, 0.5)
    assert "predicts 'dog' for 100% of the 140 train images" in verdict.message()


def test_just_below_the_one_class_share_is_judged_by_the_chance_test():
    # 132 of 140 predictions (94.3% < 95%) say "dog": not "one class", but still only 52.9% correct.
    predictions = np.ones_like(BALANCED)
    predictions[np.flatnonzero(BALANCED == 0)[:8]] = 0
    assert predictions.mean() < ONE_CLASS_SHARE
    verdict = check_predictions(BALANCED, predictions, LABELS, split="val")
    assert verdict.status == "chance" and verdict.p_value > CHANCE_ALPHA


def test_a_skewed_dataset_answered_well_is_not_one_class():
    # 96% of the images really are class 0, and the model gets every image right.
    truth = np.array([0] * 192 + [1] * 8)
    verdict = check_predictions(truth, truth, LABELS, split="test")
    assert verdict.status == "ok" and not verdict.degenerate


def test_significance_is_the_binomial_tail_against_the_majority_class():
    truth = np.array([0, 1] * 20)  # chance 0.5 on 40 images
    predictions = truth.copy()
    predictions[:14] = 1 - predictions[:14]  # 26 of 40 correct
    verdict = check_predictions(truth, predictions, LABELS, split="val")
    expected = sum(math.comb(40, k) for k in range(26, 41)) / 2**40  # P(X >= 26), X ~ B(40, 0.5)
    assert verdict.p_value == pytest.approx(expected, rel=1e-9)
    assert verdict.status == ("chance" if expected > CHANCE_ALPHA else "ok")


def test_too_few_images_cannot_decide_and_says_so():
    truth = np.array([0, 1, 0, 1])  # even 4/4 correct has p = 0.5**4 = 0.0625 > 0.05
    verdict = check_predictions(truth, truth, LABELS, split="val")
    assert verdict.status == "undecided" and not verdict.degenerate
    assert "too few" in verdict.message()


def test_a_working_model_passes_silently():
    verdict = check_predictions(BALANCED, BALANCED, LABELS, split="val")
    assert verdict.status == "ok" and verdict.message() == ""
    assert verdict.to_dict()["degenerate"] is False


# --- the verdict where users meet it: evaluate, the pipeline's gate --------------------------------

def make_degenerate(run) -> None:
    """Turn the run's float model into one that answers class 0 for every image (zero kernel, biased head)."""
    from edgecnn.training.keras_compat import keras
    from edgecnn.training.models.model_io import load_keras_model, save_keras_model

    model = load_keras_model(run.float_model)
    head = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    kernel, bias = head.get_weights()
    bias = np.zeros_like(bias)
    bias[0] = 10.0
    head.set_weights([np.zeros_like(kernel), bias])
    save_keras_model(model, run.float_model)


@pytest.fixture
def degenerate_run(tiny_run, tmp_path):
    import shutil

    from edgecnn.rundir import RunDir

    run = RunDir(shutil.copytree(tiny_run.path, tmp_path / "run"))
    make_degenerate(run)
    return run


def test_evaluate_flags_a_model_that_predicts_one_class(degenerate_run):
    import json

    from click.testing import CliRunner

    from edgecnn.cli import cli

    result = CliRunner().invoke(cli, ["evaluate", str(degenerate_run.path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    confusion = np.array(report["confusion_matrix"])
    assert confusion[:, 1:].sum() == 0 and confusion[:, 0].sum() == report["num_samples"]  # really one class
    assert report["degenerate"]["degenerate"] is True and report["degenerate"]["status"] == "one_class"
    assert report["degenerate"]["dominant_label"] == report["labels"][0]
    assert "warning: the model predicts" in result.stderr and "it is degenerate" in result.stderr


def test_the_trained_tiny_run_is_not_flagged(tiny_run, tmp_path):
    import shutil

    from edgecnn.training.evaluate.evaluation import evaluate_run

    result = evaluate_run(shutil.copytree(tiny_run.path, tmp_path / "run"))
    assert result["degenerate"]["status"] == "ok", result["degenerate"]


def test_pipeline_stops_before_export_on_a_degenerate_model(degenerate_run, tmp_path):
    """A resumed pipeline (train and evaluate done) meets the gate: exit 3, nothing pruned or exported."""
    import yaml
    from click.testing import CliRunner

    from edgecnn.cli import cli
    from edgecnn.training.evaluate.evaluation import evaluate_run

    evaluate_run(degenerate_run)
    recipe = {k: v for k, v in yaml.safe_load(degenerate_run.recipe.read_text()).items() if k != "run"}
    recipe_file = tmp_path / "same.yaml"
    recipe_file.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(cli, ["pipeline", str(recipe_file), "--data", "digits", "--out",
                                      str(degenerate_run.path), "--resume"])
    assert result.exit_code == 3, result.output
    assert "the float model is degenerate" in result.output and "--force" in result.output
    assert not degenerate_run.pruned_model.exists() and not list(degenerate_run.path.glob("*.tflite"))


def test_force_lets_the_gate_pass_with_a_warning(degenerate_run):
    from edgecnn.errors import DegenerateModel
    from edgecnn.pipeline.stages import Context, stages_for
    from edgecnn.training.evaluate.evaluation import evaluate_run

    evaluate_run(degenerate_run)
    recipe = degenerate_run.load_recipe()
    gate = next(stage for stage in stages_for(recipe) if stage.name == "evaluate").gate
    logged = []
    with pytest.raises(DegenerateModel):
        gate(Context(run=degenerate_run, recipe=recipe, data="digits", log=logged.append))
    gate(Context(run=degenerate_run, recipe=recipe, data="digits", log=logged.append, force=True))
    assert any("degenerate" in line and "--force" in line for line in logged)
