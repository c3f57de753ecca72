"""What an export will make: mode, input/output type, target and calibration source, decided once.

Two callers describe an export in their own words: the command line (``--quantize``, ``--io``,
``--target``, ``--calibration-data``) and a recipe (``export.modes``, ``export.io``,
``export.target``). Both end here, in one ``ExportPlan`` with the defaults filled in
(int8 for the Edge TPU, fp16 for the GPU, float32 on the CPU; the recipe's ``export.io`` for
int8) and contradictions refused in the words of whoever described the export. The recipe
checks, the exporter, the parity gate's option check and the pipeline all ask this module.
It imports neither TensorFlow nor OpenCV.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from edgecnn.errors import RecipeError, closest

# The converter's modes; "none" is float32 (the recipe and file names call it fp32).
MODES = ("none", "fp16", "dynamic", "int8")
# The recipe's names for them (export.modes).
EXPORT_MODES = ("fp32", "fp16", "dynamic", "int8")
EXPORT_IO = ("int8", "uint8", "float32")
EXPORT_TARGETS = ("cpu", "gpu", "edgetpu")
# File names and metadata use fp32 for an unquantized export, like the recipe's export.modes.
MODE_FILE_NAMES = {"none": "fp32", "fp16": "fp16", "dynamic": "dynamic", "int8": "int8"}
# What a target exports when no --quantize is given.
DEFAULT_MODES = {"edgetpu": "int8", "gpu": "fp16", "cpu": "none"}
# What LiteRT's GPU accelerator runs fully: float32, fp16 and full-integer int8 (measured on SwiftShader
# for every registered architecture, tests/training/export/test_gpu_on_swiftshader.py).
GPU_MODES = ("none", "fp16", "int8")
# The int8 io when neither --io nor a recipe says; also the default of the recipe's export.io.
DEFAULT_IO = "int8"
# The Keras model of a run an export is converted from, as file names and tables say it.
SOURCE_KINDS = ("float", "pruned", "qat", "pruned+qat")


def export_file_name(kind: str, mode: str, target: str = "cpu") -> str:
    """A run's file for an export: the source model, then the mode, then a non-CPU target.

    ``model_float_fp32.tflite``, ``model_pruned_fp16.tflite``, ``model_float_int8.tflite`` (post-training
    quantization), ``model_pruned_qat_int8.tflite``, ``model_float_fp16_gpu.tflite``; the Edge TPU compiler
    adds ``_edgetpu`` to its own output. Two files of a run never share a name when they hold different models.
    """
    if kind not in SOURCE_KINDS:
        raise RecipeError(f"unknown source model {kind!r}; one of {', '.join(SOURCE_KINDS)}")
    suffix = "_gpu" if target == "gpu" else ""
    return f"model_{kind.replace('+', '_')}_{MODE_FILE_NAMES[normalize_mode(mode)]}{suffix}.tflite"


@dataclasses.dataclass(frozen=True)
class ExportPlan:
    mode: str  # none | fp16 | dynamic | int8
    io: str  # int8 | uint8 | float32 (always float32 unless mode is int8)
    target: str  # cpu | gpu | edgetpu
    # Where int8 calibration images come from: "folder" (--calibration-data), "run" (its train split),
    # or None: not int8, or nothing to calibrate on (the exporter says so once it knows the model).
    calibration: str | None = None

    @property
    def quantized(self) -> bool:
        """Whether the parity gate checks this export (float32 is the float model itself)."""
        return self.mode != "none"

    @property
    def file_mode(self) -> str:
        return MODE_FILE_NAMES[self.mode]

    @classmethod
    def resolve(cls, quantize: str | None = None, io: str | None = None, target: str = "cpu", *,
                recipe_io: str | None = None, calibration_data: Path | None = None,
                in_run: bool = False) -> "ExportPlan":
        """The plan for command-line options; ``recipe_io``: the run's export.io, if the source lies in a run."""
        mode = resolve_mode(quantize, target)
        if target == "edgetpu" and mode != "int8":
            raise RecipeError(f"--target edgetpu needs a full-integer model: use --quantize int8, not {mode}")
        if target == "gpu" and mode not in GPU_MODES:
            raise RecipeError(f"--target gpu runs float and full-integer models: use --quantize fp16, int8 or none, "
                              f"not {mode}")
        if io is not None and io not in EXPORT_IO:
            raise RecipeError(f"--io {io!r} is not one of {', '.join(EXPORT_IO)}")
        if mode != "int8":
            if io not in (None, "float32"):
                raise RecipeError(f"--io {io} needs --quantize int8; {mode} models take and give float32")
            return cls(mode, "float32", target)
        io = io or recipe_io or DEFAULT_IO
        if target == "edgetpu" and io == "float32":
            raise RecipeError("--target edgetpu needs integer input and output: use --io int8 or uint8")
        calibration = "folder" if calibration_data is not None else ("run" if in_run else None)
        return cls(mode, io, target, calibration)

    @classmethod
    def for_recipe(cls, export, mode: str) -> "ExportPlan":
        """The plan of one of a recipe's ``export.modes`` (``export``: its checked ExportSettings), as the
        pipeline exports it from the run."""
        target = export.target
        # The recipe's target applies to the modes that can run there: on a GPU recipe, dynamic-range
        # exports (float activations, int8 weights: hybrid kernels) are made for the CPU.
        if target == "gpu" and normalize_mode(mode) not in GPU_MODES:
            target = "cpu"
        return cls.resolve(mode, export.io if mode == "int8" else None, target, recipe_io=export.io, in_run=True)


def normalize_mode(mode: str) -> str:
    """``fp32``/``float32`` are accepted for ``none`` (the recipe calls it fp32)."""
    mode = {"fp32": "none", "float32": "none"}.get(mode, mode)
    if mode not in MODES:
        raise RecipeError(f"--quantize {mode!r} is not one of {', '.join(MODES)}{closest(mode, MODES)}")
    return mode


def resolve_mode(quantize: str | None, target: str = "cpu") -> str:
    """The converter mode of ``--quantize`` (None: the target's default), the target checked."""
    if target not in EXPORT_TARGETS:
        raise RecipeError(f"--target {target!r} is not one of {', '.join(EXPORT_TARGETS)}")
    return normalize_mode(quantize or DEFAULT_MODES[target])


def check_recipe_export(modes: list[str], io: str, target: str, source: str) -> None:
    """A recipe's export section: each value known, and modes, io and target that agree."""
    for mode in modes:
        if mode not in EXPORT_MODES:
            raise RecipeError(f"{source}: export.modes has {mode!r}{closest(str(mode), EXPORT_MODES)}; "
                              f"use {', '.join(EXPORT_MODES)}")
    if not modes:
        raise RecipeError(f"{source}: export.modes is empty; list at least one of {', '.join(EXPORT_MODES)}")
    if io not in EXPORT_IO:
        raise RecipeError(f"{source}: export.io {io!r} is not one of {', '.join(EXPORT_IO)}")
    if target not in EXPORT_TARGETS:
        raise RecipeError(f"{source}: export.target {target!r} is not one of {', '.join(EXPORT_TARGETS)}")
    if target == "edgetpu":
        if any(mode != "int8" for mode in modes):
            raise RecipeError(
                f"{source}: export.target edgetpu needs full-integer models, but export.modes has "
                f"{[m for m in modes if m != 'int8']}; set export.modes to [int8]"
            )
        if io == "float32":
            raise RecipeError(f"{source}: export.target edgetpu needs integer input/output; set export.io to int8 or uint8")
    if target == "gpu" and all(normalize_mode(mode) not in GPU_MODES for mode in modes):
        raise RecipeError(f"{source}: export.target gpu runs float and full-integer models; add fp16, fp32 or int8 "
                          "to export.modes")
