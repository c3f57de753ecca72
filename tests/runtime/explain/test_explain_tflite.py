"""TF-free explanations of .tflite models whose right answer is known in advance.

tests/tflite_models.py builds ``AVERAGE_POOL_2D -> FULLY_CONNECTED(gain * identity) -> SOFTMAX``: its
"final feature map" is the normalized input itself, so the CAM of class k is exactly
``gain * (channel k - 127.5) / 127.5`` at every pixel. That checks the head is found, the weights are
read and dequantized, and the feature map is the right tensor.
"""

import json
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
from tflite_models import _GraphBuilder, schema, write_model

from click.testing import CliRunner

from edgecnn.cli import cli
from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.explain.explainer import TFLiteExplainer
from edgecnn.runtime.explain.heatmaps import mass_inside
from edgecnn.runtime.explain.occlusion import OcclusionPlan

GAIN = 4.0
SIZE = 16


def _image(rng, colour=(255, 0, 0)):
    image = np.full((SIZE, SIZE, 3), 128, np.uint8)
    top, left = (int(v) for v in rng.integers(0, SIZE - 4 + 1, size=2))
    image[top:top + 4, left:left + 4] = colour
    return image, (top, left, top + 4, left + 4)


@pytest.fixture(params=["float", "int8"])
def model(request, tmp_path):
    return write_model(tmp_path / f"{request.param}.tflite", kind=request.param, height=SIZE, width=SIZE, gain=GAIN)


def test_cam_is_the_dense_weights_times_the_feature_map(model):
    rng = np.random.default_rng(0)
    image, _ = _image(rng)
    e = TFLiteExplainer(model).explain(image)
    assert e.method == "cam" and e.class_index == 0  # the red square wins class "red"
    expected = GAIN * (image[..., 0].astype(np.float32) - 127.5) / 127.5
    # int8: input scale 1/127.5 and weight scale gain/127 put each value within one input step x gain.
    tolerance = 1e-5 if "float" in model.name else GAIN / 127.5 + 1e-5
    assert np.abs(e.raw - expected).max() <= tolerance


def test_cam_mass_sits_on_the_evidence_at_random_places(model):
    rng = np.random.default_rng(1)
    explainer = TFLiteExplainer(model)
    for _ in range(10):
        image, box = _image(rng)
        heat = explainer.explain(image).heatmap
        # Analytic: 16 square pixels at 1.0 against 240 background pixels at 0.5/127.5 of it -> 0.944 (float);
        # int8 quantizes the 128 background to 0 -> 1.0.
        assert mass_inside(heat, box) >= 16 / (16 + 240 * 0.5 / 127.5) - 1e-4


def test_explaining_another_class_and_a_class_out_of_range(model):
    explainer = TFLiteExplainer(model)
    image, _ = _image(np.random.default_rng(2), colour=(0, 255, 0))
    assert explainer.explain(image, class_index=1).class_index == 1
    with pytest.raises(DataError, match=r"class index 3 is out of range; .* has 3 classes \(0..2\)"):
        explainer.explain(image, class_index=3)


def test_occlusion_finds_the_evidence_with_batched_invokes(model):
    rng = np.random.default_rng(3)
    explainer = TFLiteExplainer(model, method="occlusion", occlusion=OcclusionPlan(patch=4, stride=2, batch=8))
    calls = []
    original = explainer._invoke
    explainer._invoke = lambda batch: calls.append(len(batch)) or original(batch)
    image, box = _image(rng)
    e = explainer.explain(image)
    assert e.method == "occlusion"
    # Occlusion resolves places to its stride: the peak lies within one stride (2 px) of the square.
    peak = np.unravel_index(np.argmax(e.heatmap), e.heatmap.shape)
    assert box[0] - 2 <= peak[0] < box[2] + 2 and box[1] - 2 <= peak[1] < box[3] + 2
    assert max(calls) == 8  # patches went through in batches of 8, not one by one
    # Most of the occlusion mass lies within one stride of the square (which with that margin covers at most
    # a quarter of the image). Measured over 20 random places: 0.85-1.0 float, 0.83-1.0 int8.
    assert mass_inside(e.heatmap, (box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2)) >= 0.75


def test_occlusion_over_budget_says_so_before_any_image(model):
    with pytest.raises(ModelError, match="^occlusion would need 256 invokes per image at 16x16, over the budget of 10; "
                                         "raise it with --occlusion-budget"):
        TFLiteExplainer(model, method="occlusion", occlusion=OcclusionPlan(patch=1, stride=1, budget=10))


def _no_head_model(path):
    """AVERAGE_POOL_2D -> SOFTMAX: a classifier without a dense layer."""
    b = _GraphBuilder()
    x = b.tensor("input", [1, SIZE, SIZE, 3], schema.TensorType.FLOAT32)
    pooled = b.tensor("pooled", [1, 1, 1, 3], schema.TensorType.FLOAT32)
    out = b.tensor("probs", [1, 1, 1, 3], schema.TensorType.FLOAT32)
    pool = schema.Pool2DOptionsT()
    pool.padding, pool.strideH, pool.strideW, pool.filterHeight, pool.filterWidth = schema.Padding.VALID, 1, 1, SIZE, SIZE
    b.op(schema.BuiltinOperator.AVERAGE_POOL_2D, [x], [pooled], schema.BuiltinOptions.Pool2DOptions, pool)
    softmax = schema.SoftmaxOptionsT()
    softmax.beta = 1.0
    b.op(schema.BuiltinOperator.SOFTMAX, [pooled], [out], schema.BuiltinOptions.SoftmaxOptions, softmax)
    path.write_bytes(b.finish(inputs=[x], outputs=[out]))
    return path


def test_a_model_without_a_pooling_dense_head_falls_back_to_occlusion(tmp_path):
    path = _no_head_model(tmp_path / "nohead.tflite")
    assert TFLiteExplainer(path).method == "occlusion"
    with pytest.raises(ModelError, match="has no global-pooling \\+ dense head for CAM \\(its output is not made by "
                                         "a dense layer \\(found AVERAGE_POOL_2D\\)\\); use --method occlusion"):
        TFLiteExplainer(path, method="cam")


def test_cli_no_head_and_no_occlusion_budget_says_what_was_tried(tmp_path):
    path = _no_head_model(tmp_path / "nohead.tflite")
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((SIZE, SIZE, 3), np.uint8))
    result = CliRunner().invoke(cli, ["explain", str(path), "--images", str(image), "--occlusion-budget", "5",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code != 0
    # The default plan at 16 px: patch 2, stride 1 -> 15 x 15 = 225 positions.
    assert result.output.strip().splitlines()[-1] == (
        "Error: nohead.tflite has no global-pooling + dense head for CAM (its output is not made by a dense layer "
        "(found AVERAGE_POOL_2D)), and occlusion would need 225 invokes per image at 16x16, over the budget of 5; "
        "raise it with --occlusion-budget (each invoke scores one occluded copy of the image)")
    assert not (tmp_path / "out").exists()
    ok = CliRunner().invoke(cli, ["explain", str(path), "--images", str(image), "--occlusion-budget", "225",
                                  "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0 and "occlusion sensitivity" in ok.output


def test_cli_explains_a_tflite_and_counts_undecodable_images(tmp_path):
    model = write_model(tmp_path / "m.tflite", kind="int8", height=SIZE, width=SIZE)
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(4)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), cv2.cvtColor(_image(rng)[0], cv2.COLOR_RGB2BGR))
    (folder / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["explain", str(model), "--images", str(folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "explained 3 image(s) with class activation map" in result.output
    assert "skipped 1 unreadable" in result.output
    summary = json.loads((out / "explain.json").read_text())
    assert [r["label"] for r in summary["results"]] == ["red"] * 3 and summary["skipped"] == 1
    picture = cv2.imread(str(out / "heatmaps.png"))
    assert picture is not None and picture.shape[1] == 4 * 2 * 128  # four (image, overlay) pairs a row


def test_cli_class_out_of_range_is_one_line(tmp_path):
    model = write_model(tmp_path / "m.tflite", kind="float", height=SIZE, width=SIZE)
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.zeros((SIZE, SIZE, 3), np.uint8))
    result = CliRunner().invoke(cli, ["explain", str(model), "--images", str(image), "--class", "5",
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == "Error: class index 5 is out of range; m.tflite has 3 classes (0..2)"
    assert not (tmp_path / "out").exists()  # nothing written


PROBE = textwrap.dedent("""
    import sys
    from edgecnn.cli import cli
    cli.main(args={args!r}, prog_name="edgecnn", standalone_mode=False)
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras", "keras", "sklearn")))
""")


def test_explaining_a_tflite_imports_no_tensorflow(tmp_path):
    model = write_model(tmp_path / "m.tflite", kind="int8", height=SIZE, width=SIZE)
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.full((SIZE, SIZE, 3), 90, np.uint8))
    args = ["explain", str(model), "--images", str(image), "--out", str(tmp_path / "out")]
    done = subprocess.run([sys.executable, "-c", PROBE.format(args=args)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "explain.json").is_file()  # it really ran
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_cli_refuses_float_model_options_for_a_tflite(tmp_path):
    model = write_model(tmp_path / "m.tflite", kind="float", height=SIZE, width=SIZE)
    result = CliRunner().invoke(cli, ["explain", str(model), "--images", str(model), "--compare", str(model)])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: --compare, --layer and --list-layers need the float model: give a run "
                                     "directory or .keras file, not a .tflite")
    no_images = CliRunner().invoke(cli, ["explain", str(model)])
    assert no_images.output.strip() == "Error: a .tflite has no data split; give --images FILE_OR_FOLDER"
