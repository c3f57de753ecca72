"""``parity --attention`` without TensorFlow, on models whose heatmaps are known (tests/tflite_models.py: the
CAM of class k is the input's channel k, so float and int8 maps differ only by int8 rounding)."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tflite_models import write_model

from edgecnn.cli import cli
from edgecnn.explain.agreement import rank_correlation, ranks
from edgecnn.parity.attention import TFLiteAttention, attention_agreement

SIZE = 16
COLOURS_BGR = {"blue": (220, 0, 0), "green": (0, 220, 0), "red": (0, 0, 220)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity_attention")
    rng = np.random.default_rng(0)
    for name, colour in COLOURS_BGR.items():
        (root / "data" / name).mkdir(parents=True)
        for i in range(4):
            image = np.full((SIZE, SIZE, 3), 128, np.uint8)
            top, left = (int(v) for v in rng.integers(0, SIZE - 5, size=2))
            image[top:top + 5, left:left + 5] = colour
            cv2.imwrite(str(root / "data" / name / f"{i}.png"), image)
    (root / "broken.png").write_bytes(b"not a png")  # parity itself refuses undecodable images; attention counts them
    return {"root": root, "float": write_model(root / "float.tflite", kind="float", height=SIZE, width=SIZE),
            "int8": write_model(root / "int8.tflite", kind="int8", height=SIZE, width=SIZE)}


def test_ranks_and_spearman_match_scipy():
    from scipy.stats import rankdata, spearmanr

    rng = np.random.default_rng(1)
    for _ in range(50):
        a, b = rng.integers(0, 4, 40).astype(float), rng.random(40)  # many ties in a
        assert np.allclose(ranks(a), rankdata(a))
        assert abs(rank_correlation(a, b) - spearmanr(a, b).statistic) < 1e-12


def test_attention_agreement_of_a_model_with_its_int8_and_an_unrelated_map(files):
    paths = sorted((files["root"] / "data").rglob("*.png")) + [files["root"] / "broken.png"]
    summary = attention_agreement(TFLiteAttention(files["float"]), TFLiteAttention(files["int8"]), paths,
                                  ["red", "green", "blue"])
    assert summary["skipped"] == 1 and summary["overall"]["images"] == 12
    assert summary["overall"]["top20_iou_mean"] >= 0.9  # the same map up to rounding

    class Elsewhere:  # a candidate that always looks at the top-left corner
        method = "fixed"

        def heatmaps(self, images, classes):
            heat = np.zeros((SIZE, SIZE), np.float32)
            heat[:3, :3] = 1
            return [heat] * len(images), classes

    moved = attention_agreement(TFLiteAttention(files["float"]), Elsewhere(), paths, ["red", "green", "blue"])
    assert moved["overall"]["top20_iou_mean"] < summary["overall"]["top20_iou_mean"] - 0.5


def test_parity_cli_adds_the_attention_summary(files):
    args = ["parity", str(files["float"]), str(files["int8"]), "--data", str(files["root"] / "data"), "--attention"]
    as_json = CliRunner().invoke(cli, args + ["--json"])
    assert as_json.exit_code == 0, as_json.output
    attention = json.loads(as_json.stdout)["attention"]
    assert attention["reference_method"] == attention["candidate_method"] == "cam"
    assert sum(c["images"] for c in attention["per_class"].values()) == attention["overall"]["images"]
    text = CliRunner().invoke(cli, args)
    assert "attention (cam on the reference, cam on the candidate" in text.output
    assert "attention moved most:" in text.output
    plain = CliRunner().invoke(cli, args[:-1] + ["--json"])
    assert json.loads(plain.stdout)["attention"] is None  # only when asked for
