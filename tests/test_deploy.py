"""The deploy rule over a benchmark table: the choice follows the figures, never the names (TF-free)."""

import json

import pytest

from edgecnn.deploy import DeployRule, decision_lines, recommend, rule_from_recipe, write_decision
from edgecnn.errors import RecipeError
from edgecnn.recipe import apply_overrides, resolve


def _row(fmt, file, size, latency, accuracy, agreement, *, delegate="cpu", status="ok", source="float"):
    return {"format": fmt, "file": file, "size_bytes": size, "gzip_bytes": size, "latency_ms_p50": latency,
            "accuracy": accuracy, "top1_agreement": agreement, "delegate": delegate, "status": status,
            "source": source, "note": ""}


def _table(*rows, reference=0.96):
    return {"reference": {"file": "float.keras", "accuracy": reference},
            "rows": [_row("keras", "float.keras", 500_000, 5.0, reference, 1.0), *rows]}


GATES = DeployRule(prefer="smallest", target="cpu", max_accuracy_drop=2.0, max_disagreement=0.05)


def test_a_smaller_file_that_fails_a_gate_is_passed_over_and_says_why():
    table = _table(_row("qat-int8", "model_pruned_qat_int8.tflite", 120_000, 0.02, 0.889, 0.90, source="pruned+qat"),
                   _row("float-int8", "model_float_int8.tflite", 130_000, 0.02, 0.96, 0.99),
                   _row("float-fp32", "model_float_fp32.tflite", 340_000, 0.03, 0.96, 1.0))
    decision = recommend(table, GATES)
    assert decision["status"] == "recommended"
    assert decision["recommended"]["file"] == "model_float_int8.tflite"
    assert decision["passing"] == ["float-int8", "float-fp32"]
    assert decision["rejected"] == [{"format": "qat-int8", "file": "model_pruned_qat_int8.tflite",
                                     "reasons": ["accuracy drop 7.10 pp > 2 pp", "disagreement 10.00% > 5.00%"]}]
    assert decision["reason"].startswith("model_float_int8.tflite: smallest of the 2 files that pass on cpu "
                                         "(accuracy drop <= 2 pp, disagreement <= 5.00%)")
    assert "keras" not in decision["passing"]  # the Keras model is measured, never deployed


def test_the_choice_follows_the_figures_when_the_names_swap():
    """The same figures under swapped names give the same figures' file: nothing is read from a name."""
    good, bad = (130_000, 0.02, 0.96, 0.99), (120_000, 0.02, 0.889, 0.90)
    first = recommend(_table(_row("qat-int8", "a.tflite", *bad), _row("float-int8", "b.tflite", *good)), GATES)
    swapped = recommend(_table(_row("qat-int8", "a.tflite", *good), _row("float-int8", "b.tflite", *bad)), GATES)
    assert first["recommended"]["file"] == "b.tflite" and swapped["recommended"]["file"] == "a.tflite"


def test_smallest_and_fastest_pick_by_the_measured_column_and_note_what_is_given_up():
    rows = (_row("float-dynamic", "d.tflite", 118_000, 0.035, 0.955, 0.996),
            _row("float-int8", "i.tflite", 130_000, 0.0135, 0.96, 0.996),
            _row("float-fp16", "h.tflite", 184_000, 0.0136, 0.96, 1.0))
    smallest = recommend(_table(*rows), GATES)
    assert smallest["recommended"]["file"] == "d.tflite"
    assert smallest["notes"] == [
        "float-int8 (i.tflite) is 0.5 pp more accurate, at 127.0 KB and p50 0.0135 ms",
        "float-int8 (i.tflite) is 2.6x faster (p50 0.0135 ms), at 127.0 KB; --prefer fastest picks by latency"]
    fastest = recommend(_table(*rows), DeployRule("fastest", "cpu", 2.0, 0.05))
    assert fastest["recommended"]["file"] == "i.tflite"
    assert fastest["reason"].startswith("i.tflite: fastest (measured p50) of the 3 files that pass")
    # 0.0136 ms is within 5% of 0.0135: one benchmark cannot order them, and the note says so.
    # float-dynamic is 9% smaller: under the 10% that earns a note.
    assert fastest["notes"] == ["float-fp16 within 5% of its latency: too close to call from one benchmark"]
    smaller = recommend(_table(_row("float-dynamic", "d.tflite", 100_000, 0.035, 0.96, 1.0), *rows[1:]),
                        DeployRule("fastest", "cpu", 2.0, 0.05))
    assert smaller["notes"][0] == "float-dynamic (d.tflite) is 23% smaller (97.7 KB), at p50 0.035 ms"


def test_none_passing_recommends_nothing_and_lists_each_file():
    table = _table(_row("float-int8", "model_float_int8.tflite", 130_000, 0.02, 0.90, 0.91))
    decision = recommend(table, GATES)
    assert decision["status"] == "none_passed" and decision["recommended"] is None
    assert decision["reason"] == (
        "no file passes the deploy gates on cpu (accuracy drop <= 2 pp, disagreement <= 5.00%): "
        "model_float_int8.tflite (float-int8): accuracy drop 6.00 pp > 2 pp, disagreement 9.00% > 5.00%; "
        "nothing is recommended. Loosen deploy.max_accuracy_drop / deploy.max_disagreement in the recipe, "
        "or train a better model")
    assert decision_lines(decision)[0].startswith("no recommendation: no file passes")


def test_a_target_without_measurements_is_not_measured_not_failed():
    cpu_only = _table(_row("float-int8", "i.tflite", 130_000, 0.02, 0.96, 0.99))
    gpu = DeployRule("smallest", "gpu", 2.0, 0.05)
    decision = recommend(cpu_only, gpu)
    assert decision["status"] == "not_measured"
    assert decision["reason"] == ("no file was measured on gpu; nothing is recommended. Measure there with "
                                  "'edgecnn benchmark RUN --delegates gpu'")
    failed = dict(_row("float-int8@gpu", None, None, None, None, None, delegate="gpu", status="failed"),
                  note="no GPU adapter", file="i.tflite")
    decision = recommend(_table(failed), gpu)
    assert decision["status"] == "not_measured"
    assert "float-int8@gpu: failed (no GPU adapter)" in decision["reason"]
    on_gpu = _table(_row("float-int8", "i.tflite", 130_000, 0.02, 0.96, 0.99),
                    _row("float-int8@gpu", "i.tflite", 130_000, 0.5, 0.96, 0.99, delegate="gpu"))
    assert recommend(on_gpu, gpu)["recommended"]["format"] == "float-int8@gpu"


def test_a_figure_exactly_at_the_limit_passes():
    # 0.96 - 0.94 = 0.0200000000000000018 in floats: at the limit, not above it.
    table = _table(_row("float-int8", "i.tflite", 1, 0.01, 0.94, 0.95))
    assert recommend(table, GATES)["status"] == "recommended"


def test_an_older_table_without_a_reference_uses_its_keras_row_and_no_float_model_fails_gates():
    table = _table(_row("float-int8", "i.tflite", 1, 0.01, 0.90, 0.99))
    del table["reference"]
    assert recommend(table, GATES)["rejected"][0]["reasons"] == ["accuracy drop 6.00 pp > 2 pp"]
    no_float = {"rows": [_row("float-int8", "i.tflite", 1, 0.01, None, None)]}
    assert recommend(no_float, GATES)["rejected"][0]["reasons"] == [
        "accuracy not measured (the run has no float.keras)", "agreement not measured (the run has no float.keras)"]
    assert recommend(no_float, DeployRule("smallest", "cpu"))["status"] == "recommended"  # no gates asked


def test_the_rule_takes_the_parity_gates_and_export_target_unless_the_deploy_section_sets_its_own():
    recipe = resolve({"parity": {"max_accuracy_drop": 1.5, "max_disagreement": 0.05}, "export": {"target": "gpu"}})
    assert rule_from_recipe(recipe) == DeployRule("smallest", "gpu", 1.5, 0.05)
    own = resolve({"deploy": {"prefer": "fastest", "target": "cpu", "max_accuracy_drop": 3, "max_disagreement": 0.1}})
    assert rule_from_recipe(own) == DeployRule("fastest", "cpu", 3, 0.1)
    assert rule_from_recipe(own, prefer="smallest").prefer == "smallest"
    assert apply_overrides(recipe, {"deploy.prefer": "fastest"}).deploy.prefer == "fastest"


@pytest.mark.parametrize("section,message", [
    ({"prefer": "small"}, "recipe: deploy.prefer 'small' (did you mean 'smallest'?) is not one of smallest, fastest"),
    ({"target": "tpu"}, "recipe: deploy.target 'tpu' (did you mean 'gpu'?) is not one of cpu, gpu, edgetpu"),
    ({"max_accuracy_drop": float("nan")}, "recipe: deploy.max_accuracy_drop must be a finite number >= 0, got nan"),
    ({"max_accuracy_drop": -1}, "recipe: deploy.max_accuracy_drop must be a finite number >= 0, got -1"),
    ({"max_disagreement": 2}, "recipe: deploy.max_disagreement must be a finite number between 0 and 1, got 2"),
    ({"prefer": 3}, "recipe: deploy.prefer must be str, got int 3"),
])
def test_bad_deploy_settings_are_refused_in_one_line(section, message):
    with pytest.raises(RecipeError) as caught:
        resolve({"deploy": section})
    assert str(caught.value).startswith(message)


def test_bad_prefer_override_is_refused():
    with pytest.raises(RecipeError, match="--prefer 'cheap' is not one of smallest, fastest"):
        rule_from_recipe(resolve({}), prefer="cheap")


def test_old_benchmark_format_names_in_a_recipe_are_refused_before_work_and_read_in_an_old_run():
    with pytest.raises(RecipeError, match="benchmark.formats: format 'int8-qat' is now called 'qat-int8'"):
        resolve({"benchmark": {"formats": ["int8-qat"]}})
    saved = resolve({"benchmark": {"formats": ["fp32", "int8-qat"]}}, saved=True)  # an older run's recipe.yaml
    assert saved.benchmark.formats == ["float-fp32", "qat-int8"]


def test_the_decision_is_written_atomically_as_json(tmp_path):
    decision = recommend(_table(_row("float-int8", "i.tflite", 1, 0.01, 0.96, 0.99)), GATES)
    path = write_decision(tmp_path, decision)
    assert path.name == "deploy.json" and json.loads(path.read_text()) == decision
    assert [p.name for p in tmp_path.iterdir()] == ["deploy.json"]
