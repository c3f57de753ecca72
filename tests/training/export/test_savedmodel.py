"""SavedModel export: the signature takes raw uint8 pixels and gives the Keras model's own scores."""

import numpy as np
import pytest
from click.testing import CliRunner

from edgecnn.cli import cli


@pytest.mark.slow
def test_savedmodel_signature_matches_the_float_model(tiny_run, tmp_path):
    from edgecnn.runtime.preprocess import InputSpec, normalize
    from edgecnn.training.data.run_inputs import input_spec
    from edgecnn.training.keras_compat import tf
    from edgecnn.training.models.model_io import load_keras_model

    out = tmp_path / "sm"
    result = CliRunner().invoke(cli, ["export", str(tiny_run.path), "--format", "savedmodel", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "assets" / "labels.txt").read_text().split() == tiny_run.labels()
    spec: InputSpec = input_spec(tiny_run.load_recipe())
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, spec.height, spec.width, spec.channels), dtype=np.uint8)
    served = tf.saved_model.load(str(out)).signatures["serving_default"](image=tf.constant(pixels))["scores"].numpy()
    keras = load_keras_model(tiny_run.float_model).predict(normalize(pixels, spec), verbose=0)
    assert served.shape == (5, len(tiny_run.labels()))
    np.testing.assert_allclose(served, keras, atol=1e-5)
    assert np.allclose(served.sum(axis=1), 1.0, atol=1e-5)
    again = CliRunner().invoke(cli, ["export", str(tiny_run.path), "--format", "savedmodel", "--out", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


def test_savedmodel_refuses_quantize(tmp_path):
    result = CliRunner().invoke(cli, ["export", str(tmp_path), "--format", "savedmodel", "--quantize", "int8"])
    assert result.exit_code == 2 and result.output.startswith("Error: --format savedmodel writes the float model")
