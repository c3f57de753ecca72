"""The loop's preprocessing: written through the interpreter's tensor view, identical to set_tensor."""

import numpy as np
import pytest
from tflite_models import write_model

from edgecnn.runtime.classifier import TFLiteClassifier
from edgecnn.runtime.live.frame_input import FrameInput


class NoViewInterpreter:
    """An interpreter without ``tensor()`` (like the GPU wrapper) that counts set_tensor calls."""

    def __init__(self, real):
        self._real, self.set_calls = real, 0

    def set_tensor(self, index, value):
        self.set_calls += 1
        self._real.set_tensor(index, value)

    def __getattr__(self, name):
        if name == "tensor":
            raise AttributeError(name)
        return getattr(self._real, name)


class CountingInterpreter(NoViewInterpreter):
    def __getattr__(self, name):
        return getattr(self._real, name)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {
        "int8-RGB": write_model(folder / "a.tflite", kind="int8", height=24, width=20),
        "float-BGR": write_model(folder / "b.tflite", kind="float", height=16, width=16, channel_order="BGR"),
        "int8-GRAY": write_model(folder / "c.tflite", kind="int8", channels=1, labels=("dark",), channel_order="GRAY"),
    }


@pytest.mark.parametrize("name", ["int8-RGB", "float-BGR", "int8-GRAY"])
@pytest.mark.parametrize("view", [True, False])
def test_written_input_and_scores_equal_the_set_tensor_path(models, name, view):
    reference = TFLiteClassifier(models[name], threads=1)
    fast = TFLiteClassifier(models[name], threads=1)
    spy = (CountingInterpreter if view else NoViewInterpreter)(fast.interpreter)
    fast.interpreter = spy
    frame_input = FrameInput(fast)
    assert frame_input.zero_copy is view
    rng = np.random.default_rng(0)
    for shape in [(120, 160, 3), (120, 160, 3), (17, 13, 3)]:
        frame = rng.integers(0, 256, shape, dtype=np.uint8)
        tensor = reference.preprocess_frame(frame)
        expected_scores = reference.infer(tensor)
        frame_input.write(frame)
        written = fast.interpreter.get_tensor(fast.input_detail["index"])
        assert written.dtype == tensor.dtype
        np.testing.assert_array_equal(written, tensor)
        np.testing.assert_array_equal(frame_input.infer(), expected_scores)
    assert spy.set_calls == (0 if view else 3)  # the view path never copies through set_tensor


def test_scores_come_back_in_one_array_for_the_whole_run(models):
    reference = TFLiteClassifier(models["int8-RGB"], threads=1)
    frame_input = FrameInput(TFLiteClassifier(models["int8-RGB"], threads=1))
    rng = np.random.default_rng(1)
    first = None
    for _ in range(3):
        frame = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
        frame_input.write(frame)
        scores = frame_input.infer()
        first = scores if first is None else first
        assert scores is first  # no new array per frame: the same buffer, refilled
        np.testing.assert_array_equal(scores, reference.infer(reference.preprocess_frame(frame)))
