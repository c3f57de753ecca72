"""The parity suite: every registered architecture, exported in every quantized mode, agrees with
its float original within stated tolerances; and a broken calibration is caught by the gates.

For each architecture in ``MODELS`` a tiny run is trained once (the built-in digits at 16x16, 4
epochs, about 93% test accuracy; conftest's ``tiny_run`` for mobilenet_v1_tiny), then exported
through the real export path (``training.export.export`` with the parity post-check that
``edgecnn export`` installs) as fp16, dynamic, PTQ int8 and QAT int8 (``training.qat.qat_run``
first). Each export's parity report against the run's float model on its test split must meet the
tolerances below; the QAT file must also carry the QAT Keras model's accuracy over, and (for one
architecture, image by image) reproduce its decisions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.training.models.mobilenet import MODELS  # importing it registers every architecture

# --- the tiny runs: conftest.TINY_RUN's settings (built-in digits at 16x16, 4 epochs, ~93-96% test
# --- accuracy); mobilenet_v1_tiny is conftest's tiny_run itself. The other architectures keep their own
# --- builder and settings but are narrowed in width and depth: at full depth a 16x16 model does not learn
# --- in 4 epochs (measured: mobilenet_v1 at depth 1.0 reached 54%), and each block costs seconds of graph
# --- building in training, QAT and conversion. Depth stays at the tiny models' 0.5: at 0.25 MobileNetV2 has
# --- one block per stage and so no residual Add, the op whose int8 rescaling most often goes wrong.
MAX_ALPHA = 0.35  # the widest registered tiny model (mobilenet_v2_tiny)
MAX_DEPTH = 0.5
QAT_EPOCHS = 1

# --- tolerances. Each export is compared with the run's float model on its test split (270 images, so
# --- one image is 0.37 pp of agreement or accuracy). "measured" = the worst of the 4 architectures here
# --- (docs/parity.md has every figure); each bound leaves a few images of headroom above it, and stays far
# --- below what a broken export produces (blank calibration: 23-91% of images change class).
# fp16 stores weights with an 11-bit mantissa (relative error <= 2^-11 ~ 5e-4) and computes in float32, so
# only near-ties can flip. Measured: agreement 1.000, max score error 0.008. Bounds: 2 images, 0.02.
FP16_MIN_AGREEMENT = 0.99
FP16_MAX_ABS_ERROR = 0.02
# dynamic: int8 weights (per-channel scales), activations float but quantized on the fly inside conv and
# dense kernels. Measured: agreement >= 0.996, max score error 0.052, mean 0.0007. Bounds: 5 images,
# 0.15 on the worst score (close calls), 0.003 on the mean (the typical image barely moves).
DYNAMIC_MIN_AGREEMENT = 0.98
DYNAMIC_MAX_ABS_ERROR = 0.15
DYNAMIC_MAX_MEAN_ABS_ERROR = 0.003
# PTQ int8: activations too, with ranges calibrated on 200 training images, and an int8 softmax (steps of
# 1/256). Issue 3's target is PTQ within 1.0 pp of float on the test split; 270 images make +-1 image
# (0.37 pp) sampling noise, hence 2.0 pp. Measured: agreement >= 0.989, drop <= 1.1 pp, mean error 0.004.
PTQ_MIN_AGREEMENT = 0.97
PTQ_MAX_ACCURACY_DROP_PP = 2.0
PTQ_MAX_MEAN_ABS_ERROR = 0.015
# QAT int8 against the *float* original: QAT fine-tunes the weights for an epoch, so close calls move with
# them (QAT often gains accuracy on these tiny runs). Issue 3 targets QAT within 0.5 pp of float; same
# sampling-noise headroom as PTQ. Measured: agreement >= 0.959, drop <= 1.5 pp.
QAT_MIN_AGREEMENT_WITH_FLOAT = 0.93
QAT_MAX_ACCURACY_DROP_PP = 2.0
# QAT int8 file against the QAT Keras model it was converted from. The fake-quant simulation and the
# converter differ in one known place: tfmot quantizes conv weights before batch norm is folded in, the
# converter after, so per-channel weight rounding differs slightly. Measured over repeated (before
# TF_DETERMINISTIC_OPS, non-deterministic) runs: agreement 0.948-0.989, mean score error <= 0.0059, accuracy
# gap up to 2.6 pp on mobilenet_v1_tiny after one QAT epoch. Bounds: agreement 0.93 (about 5 images below
# the worst seen), gap 3.0 pp (8 images). A file that does not carry the QAT model over (wrong weights,
# wrong ranges) lands near chance (10%), far outside both.
QAT_MIN_AGREEMENT_WITH_KERAS = 0.93
QAT_MAX_MEAN_ABS_ERROR_WITH_KERAS = 0.015
QAT_MAX_ACCURACY_GAP_TO_KERAS_PP = 3.0
# The gate every good PTQ export above passes and the broken calibration must fail.
GATE_MAX_DISAGREEMENT = round(1 - PTQ_MIN_AGREEMENT, 6)

ARCHITECTURES = sorted(MODELS)
MODES = ("fp16", "dynamic", "ptq_int8", "qat_int8")


_RUNS: dict[str, Path] = {}
_EXPORTS: dict[tuple[str, str], tuple] = {}
_REFERENCES: dict[str, tuple] = {}


def _trained(arch: str, request) -> Path:
    """A trained tiny run of ``arch``, made once per session; mobilenet_v1_tiny reuses conftest's tiny_run."""
    if arch not in _RUNS:
        from conftest import TINY_RUN

        root = request.getfixturevalue("suite_root")
        if arch == TINY_RUN["model"]:
            _RUNS[arch] = Path(shutil.copytree(request.getfixturevalue("tiny_run").path, root / arch))
        else:
            from edgecnn.training.fit.train import train_run

            spec = MODELS[arch]
            settings = {**TINY_RUN, "model": arch, "alpha": min(spec.alpha, MAX_ALPHA),
                        "depth": min(spec.depth, MAX_DEPTH)}
            _RUNS[arch] = train_run("digits", root / arch, log=lambda message: None, **settings).path
    return _RUNS[arch]


def _exported(arch: str, mode: str, run: Path):
    """(ExportResult, parity report dict) of ``mode`` for ``run``, through the export path.

    The parity report is what ``edgecnn export``'s post-check computes (``run_parity`` of the run's float
    model against the file on the test split); here the float model is loaded once per run and shared by
    the four exports (the CLI tests below go through the post-check itself).
    """
    key = (arch, mode)
    if key not in _EXPORTS:
        from edgecnn.parity.core import run_parity
        from edgecnn.parity.data import load_parity_data
        from edgecnn.training.evaluate.keras_predictor import load_predictor
        from edgecnn.training.export.exporter import ExportOptions, export

        if mode == "qat_int8":
            from edgecnn.training.optimize.qat import qat_run

            qat_run(run, epochs=QAT_EPOCHS, progress=False)
            options = ExportOptions(quantize="int8", start="qat", out=run / "model_int8_qat.tflite")
        elif mode == "ptq_int8":
            options = ExportOptions(quantize="int8", start="float")
        else:
            options = ExportOptions(quantize=mode, start="float")
        result = export(run, options, progress=False)
        if arch not in _REFERENCES:
            _REFERENCES[arch] = (load_predictor(run / "float.keras"), load_parity_data(run, "test"))
        reference, data = _REFERENCES[arch]
        report = run_parity(reference, load_predictor(result.path), data).to_dict()
        _EXPORTS[key] = (result, report)
    return _EXPORTS[key]


@pytest.fixture(scope="session")
def suite_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("suite_runs")


# Ordered so that all modes of one architecture run together (its run is trained once, QAT last).
@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_export_agrees_with_its_float_original(arch, mode, request):
    run = _trained(arch, request)
    result, report = _exported(arch, mode, run)
    assert result.path.is_file() and report["num_samples"] >= 200
    assert report["reference"]["path"].endswith("float.keras")
    assert report["reference"]["accuracy"] >= 0.7, "the float model must have learned: agreement is meaningless otherwise"
    agreement, max_err, mean_err = report["top1_agreement"], report["max_abs_error"], report["mean_abs_error"]
    drop = report["accuracy_drop_pp"]
    if mode == "fp16":
        assert agreement >= FP16_MIN_AGREEMENT and max_err <= FP16_MAX_ABS_ERROR, report_line(report)
    elif mode == "dynamic":
        assert agreement >= DYNAMIC_MIN_AGREEMENT, report_line(report)
        assert max_err <= DYNAMIC_MAX_ABS_ERROR and mean_err <= DYNAMIC_MAX_MEAN_ABS_ERROR, report_line(report)
    elif mode == "ptq_int8":
        assert result.quantization_source == "ptq"
        assert agreement >= PTQ_MIN_AGREEMENT and drop <= PTQ_MAX_ACCURACY_DROP_PP, report_line(report)
        assert mean_err <= PTQ_MAX_MEAN_ABS_ERROR, report_line(report)
    else:
        assert result.quantization_source == "qat"
        assert agreement >= QAT_MIN_AGREEMENT_WITH_FLOAT and drop <= QAT_MAX_ACCURACY_DROP_PP, report_line(report)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_qat_accuracy_in_keras_carries_over_to_the_int8_file(arch, request):
    run = _trained(arch, request)
    _, report = _exported(arch, "qat_int8", run)
    keras_qat = json.loads((run / "qat_report.json").read_text())["accuracy"]
    assert keras_qat["split"] == "test" and keras_qat["num_samples"] == report["num_samples"]
    carried = abs(keras_qat["qat"] - report["candidate"]["accuracy"]) * 100
    assert carried <= QAT_MAX_ACCURACY_GAP_TO_KERAS_PP, f"Keras QAT {keras_qat['qat']:.3f}, int8 file {report['candidate']['accuracy']:.3f}"


@pytest.mark.slow
def test_qat_int8_file_reproduces_the_qat_keras_model_decision_by_decision(request):
    # Loading qat.keras rebuilds the QAT model (tfmot's quantize_apply, seconds per model), so this
    # image-by-image check runs on one architecture; the accuracy carry-over above covers them all.
    from edgecnn.parity.core import run_parity
    from edgecnn.parity.data import load_parity_data
    from edgecnn.training.evaluate.keras_predictor import load_predictor

    run = _trained(BROKEN_ARCH, request)
    result, _ = _exported(BROKEN_ARCH, "qat_int8", run)
    keras_qat = load_predictor(run / "qat.keras")
    assert keras_qat.description == "Keras QAT"
    report = run_parity(keras_qat, load_predictor(result.path), load_parity_data(run, "test"))
    assert report.top1_agreement >= QAT_MIN_AGREEMENT_WITH_KERAS, report_line(report.to_dict())
    assert report.mean_abs_error <= QAT_MAX_MEAN_ABS_ERROR_WITH_KERAS, report_line(report.to_dict())


def report_line(report: dict) -> str:
    return (f"agreement {report['top1_agreement']:.3f}, max abs {report['max_abs_error']:.4f}, "
            f"mean abs {report['mean_abs_error']:.5f}, accuracy {report['reference']['accuracy']:.3f} -> "
            f"{report['candidate']['accuracy']:.3f}")


# --- a broken calibration is caught ---------------------------------------------------------------

BROKEN_ARCH = "mobilenet_v1_tiny"
CLASSES = 10  # the built-in digits
SIZE = 16
# Blank calibration images. Black (normalized -1 everywhere) calibrates the input range to [-1, 0], so
# the white strokes of every digit are clipped: a partial collapse (measured: 23% of test images change
# class). Mid-gray (normalized ~0) calibrates every range to almost nothing: a total collapse (91%).
BLACK, GRAY = 0, 128


def _blank_folder(root: Path, value: int) -> Path:
    """One class folder per label, each holding blank (single-value) images: useless calibration."""
    import cv2

    for label in range(CLASSES):
        (root / str(label)).mkdir(parents=True)
        for i in range(4):
            cv2.imwrite(str(root / str(label) / f"{i}.png"), np.full((SIZE, SIZE), value, np.uint8))
    return root


@pytest.fixture(scope="session")
def good_run(request):
    run = _trained(BROKEN_ARCH, request)
    # The gate below must pass for a good int8 export of this same run, or failing it would prove nothing.
    _, report = _exported(BROKEN_ARCH, "ptq_int8", run)
    assert 1 - report["top1_agreement"] <= GATE_MAX_DISAGREEMENT
    return run


@pytest.mark.slow
def test_export_gate_refuses_a_broken_calibration_and_keeps_no_file(good_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run, ignore=shutil.ignore_patterns("*.tflite", "parity_*"))
    before = sorted(p.name for p in run.iterdir())
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "int8", "--from", "float",
                                      "--calibration-data", str(_blank_folder(tmp_path / "blank", BLACK)),
                                      "--max-disagreement", str(GATE_MAX_DISAGREEMENT)])
    assert result.exit_code == 3, result.output
    assert "Error: parity gate failed: disagreement" in result.output
    assert "top-1 agreement" in result.output  # the report that explains the refusal is printed
    # No model, no report, no temporary file: the run is exactly as before.
    assert sorted(p.name for p in run.iterdir()) == before


@pytest.mark.slow
def test_parity_command_fails_a_broken_export_with_exit_code_3(good_run, tmp_path):
    broken = tmp_path / "broken_int8.tflite"
    export = CliRunner().invoke(cli, ["export", str(good_run), "--quantize", "int8", "--from", "float", "--no-parity",
                                      "--calibration-data", str(_blank_folder(tmp_path / "blank", GRAY)),
                                      "--out", str(broken)])
    assert export.exit_code == 0, export.output
    args = ["parity", str(good_run / "float.keras"), str(broken), "--data", str(good_run)]
    result = CliRunner().invoke(cli, [*args, "--max-disagreement", str(GATE_MAX_DISAGREEMENT)])
    assert result.exit_code == 3, result.output
    assert "Error: parity gate failed: disagreement" in result.output
    # The same command passes the good export of the same run: the gate separates the two.
    good = CliRunner().invoke(cli, ["parity", str(good_run / "float.keras"), str(good_run / "model_float_int8.tflite"),
                                    "--data", str(good_run), "--max-disagreement", str(GATE_MAX_DISAGREEMENT)])
    assert good.exit_code == 0, good.output


@pytest.mark.slow
def test_export_prints_and_saves_parity_by_default_and_no_parity_skips_it(good_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(good_run, run, ignore=shutil.ignore_patterns("*.tflite", "parity_*"))
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "dynamic"])
    assert result.exit_code == 0, result.output
    assert "parity against float.keras on the test split:" in result.output
    saved = json.loads((run / "parity_float_dynamic.json").read_text())
    assert saved["candidate"]["path"] == str(run / "model_float_dynamic.tflite")  # the final name, not the temporary one
    result = CliRunner().invoke(cli, ["export", str(run), "--quantize", "fp16", "--no-parity"])
    assert result.exit_code == 0, result.output
    assert "parity against" not in result.output and not (run / "parity_float_fp16.json").exists()


@pytest.mark.parametrize("args, message", [
    (["--quantize", "int8", "--no-parity", "--max-disagreement", "0.01"],
     "--max-disagreement gate the parity check, which --no-parity turns off"),
    (["--quantize", "none", "--max-accuracy-drop", "1"],
     "--max-accuracy-drop gate quantized exports; a float32 export is not checked"),
    (["--quantize", "int8", "--max-disagreement", "2"], "--max-disagreement is a fraction between 0 and 1"),
])
def test_export_gate_options_are_checked_before_any_work(tmp_path, args, message):
    result = CliRunner().invoke(cli, ["export", str(tmp_path / "no_such_run"), *args])
    assert result.exit_code == 2
    assert f"Error: {message}" in result.output
