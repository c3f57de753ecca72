"""One export plan: defaults per target, contradictions refused in the words of whoever asked
(flags or recipe), the recipe's modes mapped to targets for the pipeline, the parity gate's option
check asking the same plan, and the gate seeing a candidate file while ``result.path`` stays the
destination."""

from __future__ import annotations

import types

import pytest

from edgecnn.errors import GateFailed, RecipeError
from edgecnn.export_plan import ExportPlan, resolve_mode
from edgecnn.recipe import ExportSettings, resolve


@pytest.mark.parametrize("target, mode, io", [("edgetpu", "int8", "int8"), ("gpu", "fp16", "float32"),
                                              ("cpu", "none", "float32")])
def test_each_target_has_its_default_mode(target, mode, io):
    plan = ExportPlan.resolve(target=target)
    assert (plan.mode, plan.io, plan.target) == (mode, io, target)
    assert resolve_mode(None, target) == mode


def test_int8_io_comes_from_the_flag_then_the_recipe_then_the_default():
    assert ExportPlan.resolve("int8").io == ExportSettings().io
    assert ExportPlan.resolve("int8", recipe_io="uint8").io == "uint8"
    assert ExportPlan.resolve("int8", "float32", recipe_io="uint8").io == "float32"
    assert ExportPlan.resolve("fp32", recipe_io="uint8") == ExportPlan("none", "float32", "cpu")


def test_calibration_source_is_planned():
    from pathlib import Path

    assert ExportPlan.resolve("int8", in_run=True).calibration == "run"
    assert ExportPlan.resolve("int8", calibration_data=Path("imgs"), in_run=True).calibration == "folder"
    assert ExportPlan.resolve("int8").calibration is None  # a user's model without images: the exporter says so
    assert ExportPlan.resolve("dynamic", in_run=True).calibration is None


@pytest.mark.parametrize("kwargs, message", [
    ({"target": "tpu"}, "--target 'tpu' is not one of cpu, gpu, edgetpu"),
    ({"quantize": "fp16", "target": "edgetpu"}, "--target edgetpu needs a full-integer model: use --quantize int8, not fp16"),
    ({"quantize": "dynamic", "target": "gpu"},
     "--target gpu runs float and full-integer models: use --quantize fp16, int8 or none, not dynamic"),
    ({"quantize": "int8", "io": "int16"}, "--io 'int16' is not one of int8, uint8, float32"),
    ({"quantize": "fp16", "io": "int8"}, "--io int8 needs --quantize int8; fp16 models take and give float32"),
    ({"quantize": "int8", "io": "float32", "target": "edgetpu"},
     "--target edgetpu needs integer input and output: use --io int8 or uint8"),
    ({"quantize": "int4"}, "--quantize 'int4' is not one of none, fp16, dynamic, int8"),
])
def test_contradictory_flags_are_refused_with_the_existing_messages(kwargs, message):
    with pytest.raises(RecipeError) as error:
        ExportPlan.resolve(**kwargs)
    assert str(error.value).startswith(message)


@pytest.mark.parametrize("export, message", [
    ({"target": "edgetpu", "modes": ["fp16", "int8"]},
     "export.target edgetpu needs full-integer models, but export.modes has ['fp16']; set export.modes to [int8]"),
    ({"target": "gpu", "modes": ["dynamic"]},
     "export.target gpu runs float and full-integer models; add fp16, fp32 or int8 to export.modes"),
    ({"modes": []}, "export.modes is empty"),
    ({"io": "int4"}, "export.io 'int4' is not one of int8, uint8, float32"),
    ({"target": "npu"}, "export.target 'npu' is not one of cpu, gpu, edgetpu"),
])
def test_recipe_contradictions_are_refused_by_the_plan_module(export, message):
    with pytest.raises(RecipeError, match="^recipe: " + __import__("re").escape(message)):
        resolve({"export": export})


def test_pipeline_plans_each_recipe_mode():
    gpu = resolve({"export": {"target": "gpu", "modes": ["fp32", "fp16", "dynamic", "int8"], "io": "uint8"}}).export
    assert ExportPlan.for_recipe(gpu, "fp32") == ExportPlan("none", "float32", "gpu")
    assert ExportPlan.for_recipe(gpu, "fp16") == ExportPlan("fp16", "float32", "gpu")
    # Full-integer int8 runs on LiteRT's GPU accelerator; dynamic-range (hybrid kernels) is made for the CPU.
    assert ExportPlan.for_recipe(gpu, "int8") == ExportPlan("int8", "uint8", "gpu", "run")
    assert ExportPlan.for_recipe(gpu, "dynamic") == ExportPlan("dynamic", "float32", "cpu")
    tpu = resolve({"export": {"target": "edgetpu", "modes": ["int8"]}}).export
    assert ExportPlan.for_recipe(tpu, "int8") == ExportPlan("int8", tpu.io, "edgetpu", "run")
    assert not ExportPlan.for_recipe(gpu, "fp32").quantized and ExportPlan.for_recipe(gpu, "fp16").quantized


@pytest.mark.parametrize("mode, target, refused", [(None, "cpu", True), ("fp32", "gpu", True), ("none", "cpu", True),
                                                   (None, "gpu", False), (None, "edgetpu", False),
                                                   ("dynamic", "cpu", False)])
def test_gate_options_ask_the_plan_what_the_export_makes(mode, target, refused):
    from edgecnn.training.export.parity_gate import check_export_gate_options

    def check():
        check_export_gate_options(enabled=True, max_disagreement=0.01, max_accuracy_drop=None, mode=mode, target=target)

    if refused:
        with pytest.raises(RecipeError, match="gate quantized exports; a float32 export is not checked"):
            check()
    else:
        check()


# --- the gate writes through a candidate file --------------------------------------------------------

def test_write_hands_the_candidate_to_the_check_and_never_moves_result_path(tmp_path):
    from edgecnn.training.export.exporter import _write

    out = tmp_path / "model.tflite"
    result = types.SimpleNamespace(path=out)
    seen = []

    def check(res, candidate):
        seen.append((res.path, candidate, candidate.read_bytes(), out.exists()))

    _write(result, b"tflite bytes", check)
    (path, candidate, data, existed), = seen
    assert path == out and result.path == out and candidate != out and candidate.parent == out.parent
    assert data == b"tflite bytes" and not existed and out.read_bytes() == b"tflite bytes"
    assert not candidate.exists()

    def refuse(res, candidate):
        raise GateFailed("no")

    gated = tmp_path / "gated.tflite"
    result = types.SimpleNamespace(path=gated)
    with pytest.raises(GateFailed):
        _write(result, b"x", refuse)
    assert result.path == gated and not gated.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]  # no candidate left behind


def test_gate_outside_a_run_names_the_destination(tmp_path):
    from pathlib import Path

    from edgecnn.training.export.parity_gate import parity_post_check

    out = tmp_path / "model_int8.tflite"
    source = types.SimpleNamespace(keras_path=Path("user.keras"))
    result = types.SimpleNamespace(mode="int8", run=None, source=source, path=out, notes=[])
    parity_post_check()(result, tmp_path / "model_int8.tflite.tmp123")
    assert result.path == out and f"'edgecnn parity user.keras {out} --data DIR'" in result.notes[0]
    with pytest.raises(RecipeError, match=f"check it with 'edgecnn parity user.keras {out} --data DIR'"):
        parity_post_check(max_disagreement=0.01)(result, tmp_path / "x.tmp")
