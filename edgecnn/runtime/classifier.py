"""A .tflite image classifier: interpreter + the model's own preprocessing + (de)quantization.

Everything the model needs to know comes from its edgecnn metadata (labels, size, channel
order, normalization); a model without metadata gets them from the caller (CLI flags), with
the input size taken from its input tensor. ``predict`` takes arrays made by
``preprocess.prepare_image``; ``predict_image``/``predict_frame`` take raw uint8 images and use
the bit-identical lookup-table path, so host checks and the device agree exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgecnn.errors import DataError, ModelError
from edgecnn.runtime.interpreter import LoadedInterpreter, load_interpreter
from edgecnn.runtime.preprocess import (
    InputConverter,
    InputSpec,
    dequantize_output,
    model_pixels_from_bgr,
    model_pixels_from_rgb,
    quantize_input,
)
from edgecnn.tflite.described import EDGECNN_SOURCE, GUESS_WARNING, describe_file
from edgecnn.tflite.metadata import ModelMetadata


class TFLiteClassifier:
    def __init__(self, model_path, *, threads: int | None = None, delegate: str = "cpu", device: str | None = None,
                 delegate_path=None, fallback: str | None = None, labels: list[str] | None = None,
                 spec: InputSpec | None = None, spec_overrides: dict | None = None, extra_outputs=()):
        """``spec`` replaces the model's preprocessing entirely; ``spec_overrides`` (channel_order,
        mean, std: CLI flags) replace only those fields, the size still coming from the model.
        ``extra_outputs``: inner tensors exposed as outputs too (``extra_output_details``), filled
        by the same invoke as the scores."""
        self.model_path = Path(model_path)
        self._extra_outputs = tuple(int(t) for t in extra_outputs)
        self.loaded: LoadedInterpreter = load_interpreter(model_path, threads=threads, delegate=delegate,
                                                          device=device, delegate_path=delegate_path,
                                                          fallback=fallback, extra_outputs=self._extra_outputs)
        self.interpreter = self.loaded.interpreter
        self.warnings: list[str] = list(self.loaded.warnings)
        self.metadata_source = ""  # where labels and preprocessing came from (see tflite.described)
        self.metadata: ModelMetadata | None = self._read_metadata(
            guesses_covered=spec is not None or (labels is not None and bool(spec_overrides)
                                                 and any(v is not None for v in spec_overrides.values())))
        self.input_detail, self.output_detail = self._single_io()
        self.spec = spec or self._spec_from_model(spec_overrides or {})
        self._check_spec_fits_input()
        self.num_classes = int(np.prod(self.output_detail["shape"][1:]))
        self.labels = self._labels(labels)
        self._convert = InputConverter(self.spec, self.input_detail)
        self._input_index = self.input_detail["index"]
        self._output_index = self.output_detail["index"]

    # --- set-up -----------------------------------------------------------------------
    def _read_metadata(self, guesses_covered: bool) -> ModelMetadata | None:
        try:
            described = describe_file(self.model_path)
        except ModuleNotFoundError:  # tflite_runtime-only install: no flatbuffer schema to read it with
            self.warnings.append("cannot read edgecnn metadata without ai-edge-litert; using flags and defaults")
            return None
        guess = GUESS_WARNING.format(name=self.model_path)
        self.warnings.extend(w for w in described.warnings if not (guesses_covered and w == guess))
        self.metadata_source = described.source
        return described.metadata

    def _model_outputs(self) -> list[dict]:
        """Output details without the extra outputs (kept in ``extra_output_details``)."""
        details = self.interpreter.get_output_details()
        self.extra_output_details = {d["index"]: d for d in details if d["index"] in self._extra_outputs}
        return [d for d in details if d["index"] not in self._extra_outputs]

    def _single_io(self) -> tuple[dict, dict]:
        inputs = self.interpreter.get_input_details()
        outputs = self._model_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{self.model_path} has {len(inputs)} inputs and {len(outputs)} outputs; "
                             "an image classifier has one image input and one score output")
        inp = inputs[0]
        if len(inp["shape"]) == 4 and inp["shape"][0] != 1 and hasattr(self.interpreter, "resize_tensor_input"):
            # We invoke one image at a time (what a camera needs); a fixed or dynamic batch becomes 1.
            self.interpreter.resize_tensor_input(inp["index"], [1, *inp["shape"][1:]])
            self.interpreter.allocate_tensors()
            inp, outputs = self.interpreter.get_input_details()[0], self._model_outputs()
        return inp, outputs[0]

    def _spec_from_model(self, overrides: dict) -> InputSpec:
        overrides = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(overrides) - {"channel_order", "mean", "std"}
        if unknown:
            raise ModelError(f"cannot override {', '.join(sorted(unknown))}; only channel_order, mean and std")
        if self.metadata is not None:
            base = InputSpec.from_metadata(self.metadata)
            if overrides:
                self.warnings.append("--channel-order/--mean/--std override the preprocessing in the model's metadata")
            return InputSpec.from_input_shape([1, base.height, base.width, base.channels], resize=base.resize,
                                              **{"channel_order": base.channel_order, "mean": base.mean,
                                                 "std": base.std, **overrides})
        return InputSpec.from_input_shape(self.input_detail["shape"], **overrides)

    def _check_spec_fits_input(self) -> None:
        expected = [1, self.spec.height, self.spec.width, self.spec.channels]
        actual = [int(d) for d in self.input_detail["shape"]]
        if actual != expected:
            raise ModelError(f"{self.model_path} takes input {actual} but its preprocessing says "
                             f"{self.spec.height}x{self.spec.width}x{self.spec.channels}; re-export the model")

    def _labels(self, labels) -> list[str]:
        if labels is not None:
            labels, source = list(labels), "the given labels"
        elif self.metadata is not None:
            # "its metadata" for edgecnn's entry (the usual case); the standard entry is named.
            labels = list(self.metadata.labels)
            source = "its metadata" if self.metadata_source == EDGECNN_SOURCE else f"its {self.metadata_source}"
        else:  # no metadata, no labels file: name classes by index
            labels, source = [str(i) for i in range(self.num_classes)], ""
        if len(labels) != self.num_classes:
            raise ModelError(f"{self.model_path} outputs {self.num_classes} scores but {source} name "
                             f"{len(labels)} classes; give a labels file with {self.num_classes} lines (--labels) "
                             "or re-export the model")
        return labels

    # --- inference ----------------------------------------------------------------------
    def preprocess_frame(self, bgr_uint8: np.ndarray) -> np.ndarray:
        """A BGR camera frame as the input tensor (dtype and shape the interpreter wants)."""
        return self._convert(model_pixels_from_bgr(bgr_uint8, self.spec))[None]

    def preprocess_image(self, rgb_uint8: np.ndarray) -> np.ndarray:
        """An RGB image as the input tensor."""
        return self._convert(model_pixels_from_rgb(rgb_uint8, self.spec))[None]

    def infer(self, input_tensor: np.ndarray) -> np.ndarray:
        """Scores (classes,) float32 for one prepared input tensor."""
        self.interpreter.set_tensor(self._input_index, input_tensor)
        return self.infer_current()

    def infer_current(self) -> np.ndarray:
        """Scores for the input already in the tensor (written through the interpreter's view)."""
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self._output_index)
        return dequantize_output(raw, self.output_detail).reshape(-1)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Scores (N, classes) for normalized float32 inputs (N, h, w, c) made by ``prepare_image``."""
        batch = np.asarray(batch, dtype=np.float32)
        if batch.ndim == 3:
            batch = batch[None]
        expected = (self.spec.height, self.spec.width, self.spec.channels)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            raise DataError(f"predict needs inputs of shape (N, {', '.join(map(str, expected))}), got {batch.shape}; "
                            "make them with edgecnn.runtime.preprocess.prepare_image")
        scores = np.empty((len(batch), self.num_classes), dtype=np.float32)
        for i, sample in enumerate(batch):
            scores[i] = self.infer(quantize_input(sample[None], self.input_detail))
        return scores

    def predict_image(self, rgb_uint8: np.ndarray) -> np.ndarray:
        return self.infer(self.preprocess_image(rgb_uint8))

    def predict_frame(self, bgr_uint8: np.ndarray) -> np.ndarray:
        return self.infer(self.preprocess_frame(bgr_uint8))

    # --- description ----------------------------------------------------------------------
    @property
    def runtime(self) -> str:
        return self.loaded.runtime

    @property
    def delegate(self) -> str:
        return self.loaded.delegate

    @property
    def input_dtype(self) -> str:
        return np.dtype(self.input_detail["dtype"]).name
