"""``edgecnn export``: a run (or a user's .keras model) to a .tflite that carries its own metadata.

One export is a pipeline of small steps, each in its own function:
  resolve_source   which Keras model (float / pruned / QAT / the user's) and what it expects
  plan             --quantize / --io / --target checked against each other (``edgecnn.export_plan``); the output path
  convert          TFLiteConverter per mode (``convert.py``), calibrated for int8 (``calibration.py``)
  check            int8 has no float tensor inside; GPU and Edge TPU compatibility reports (``checks.py``)
  embed            ModelMetadata (labels, input, normalization, provenance, content hash)
  write            atomically: the bytes go to a temporary file beside the target, an optional
                   ``post_check(result, candidate)`` (the parity gate) runs on that file (``candidate``;
                   ``result.path`` names the destination throughout), and only then is it renamed
                   into place, so a failed gate keeps no file
  compile          ``edgetpu_compiler`` when installed (``--target edgetpu``)

Which model a run exports: ``int8`` uses qat.keras when the run has one (QAT ranges), else
post-training quantization of pruned.keras or float.keras calibrated on the train split; the
float modes use pruned.keras when present, else float.keras. ``start`` overrides the choice.
The file's name in the run says which it was (``export_plan.export_file_name``):
model_pruned_qat_int8.tflite, model_float_int8.tflite, model_pruned_fp16.tflite ...
"""

from __future__ import annotations

import dataclasses
import gzip
import sys
from pathlib import Path
from typing import Callable

from edgecnn import __version__
from edgecnn.atomic import atomic_path, write_bytes
from edgecnn.errors import DataError, ModelError, RecipeError, RunDirError, RuntimeUnavailable
from edgecnn.export_plan import EXPORT_TARGETS, MODE_FILE_NAMES, ExportPlan, export_file_name
from edgecnn.recipe import Recipe
from edgecnn.rundir import RunDir
from edgecnn.runtime.preprocess import InputSpec
from edgecnn.tflite import edgetpu, gpu_rules
from edgecnn.tflite.metadata import ModelMetadata, embed_metadata, labels_from_file
from edgecnn.training.data.run_inputs import input_spec, model_name, open_run
from edgecnn.training.export import calibration
from edgecnn.training.export.checks import check_int8, run_checks  # noqa: F401  (check_int8: for callers)
from edgecnn.training.export.convert import convert, static_input_shape
from edgecnn.training.export.raw_pixels import raw_pixel_normalization
from edgecnn.training.models.model_io import is_qat_archive, load_keras_model, qat_info

TARGETS = EXPORT_TARGETS
STARTS = ("float", "pruned", "qat")


@dataclasses.dataclass
class ExportOptions:
    quantize: str | None = None  # none | fp16 | dynamic | int8; None: the target's (export_plan.DEFAULT_MODES)
    io: str | None = None  # int8 | uint8 | float32; None: the run recipe's export.io for int8, else float32
    target: str = "cpu"
    out: Path | None = None
    calibration_data: Path | None = None
    labels_file: Path | None = None
    start: str | None = None  # float | pruned | qat (runs only)
    # Input description of a user's .keras model (a run's recipe already says it).
    channel_order: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    compile_edgetpu: bool = True


@dataclasses.dataclass
class Source:
    """The Keras model an export converts, and what it expects."""

    keras_path: Path
    kind: str  # float | pruned | qat | pruned+qat | user
    run: RunDir | None
    recipe: Recipe | None  # None: a user's model outside any run
    model_name: str
    reference_path: Path  # the float original, for parity


@dataclasses.dataclass
class ExportResult:
    path: Path  # where the .tflite is written (post_check gets the temporary candidate file separately)
    mode: str  # none | fp16 | dynamic | int8
    io: str
    target: str
    source: Source
    quantization_source: str  # float | pruned | ptq | pruned+ptq | qat | pruned+qat
    size_bytes: int
    gzip_bytes: int
    metadata: ModelMetadata
    spec: InputSpec
    labels: list[str]
    calibration: dict | None = None
    checks: dict = dataclasses.field(default_factory=dict)  # "int8", "gpu", "edgetpu", and "parity" from post_check
    compiled_path: Path | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def run(self) -> RunDir | None:
        return self.source.run

    @property
    def reference_path(self) -> Path:
        return self.source.reference_path

    def to_dict(self) -> dict:
        return {
            "path": str(self.path), "quantize": self.mode, "io": self.io, "target": self.target,
            "source": str(self.source.keras_path), "quantization_source": self.quantization_source,
            "size_bytes": self.size_bytes, "gzip_bytes": self.gzip_bytes,
            "calibration": self.calibration, "checks": self.checks,
            "compiled_path": str(self.compiled_path) if self.compiled_path else None,
            "notes": self.notes, "metadata": dataclasses.asdict(self.metadata),
        }


# post_check(result, candidate): ``candidate`` is the temporary file that becomes ``result.path`` if the check passes.
PostCheck = Callable[[ExportResult, Path], None]


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- plan ----------------------------------------------------------------------------------------

def plan_export(options: ExportOptions, recipe: Recipe | None) -> ExportPlan:
    """Mode, io, target and calibration source after defaults, or a one-line error for contradictory options.

    ``recipe``: the recipe of the run the source lies in (its export.io is the int8 default), None outside a run.
    """
    return ExportPlan.resolve(options.quantize, options.io, options.target,
                              recipe_io=recipe.export.io if recipe is not None else None,
                              calibration_data=options.calibration_data, in_run=recipe is not None)


def default_out(source: Source, mode: str, target: str) -> Path:
    file_mode = MODE_FILE_NAMES[mode]
    if source.run is not None and source.keras_path.parent == source.run.path:
        # In a run the name says which model the file came from (export_file_name): model_pruned_qat_int8.tflite.
        # The Edge TPU-ready model has no target suffix; the compiler adds _edgetpu for its output.
        return source.run.path / export_file_name(source.kind, mode, target)
    suffix = "_gpu" if target == "gpu" else ""
    return source.keras_path.with_name(f"{source.keras_path.stem}_{file_mode}{suffix}.tflite")


def planned_path(path, options: ExportOptions) -> Path:
    """Where ``export(path, options)`` writes, found without loading or converting any model."""
    plan = plan_export(options, _recipe_near(Path(path)))
    return Path(options.out) if options.out else default_out(resolve_source(path, options, plan.mode), plan.mode,
                                                              plan.target)


def check_out(out: Path) -> Path:
    out = Path(out)
    if out.is_dir():
        raise RecipeError(f"--out {out} is a folder; give a file name such as {out / 'model.tflite'}")
    if not out.parent.is_dir():
        raise RecipeError(f"cannot write {out}: folder {out.parent} does not exist; create it or choose another --out")
    return out


# --- resolve the source -------------------------------------------------------------------------------

def resolve_source(path, options: ExportOptions, mode: str) -> Source:
    """A run directory (or a .keras file inside one) or a user's .keras model."""
    path = Path(path)
    if path.is_dir():
        return _run_source(RunDir(path), options, mode)
    if not path.exists():
        raise RunDirError(f"{path} does not exist; pass a run directory made by 'edgecnn train' or a .keras file")
    if path.suffix != ".keras":
        raise ModelError(f"{path} is not a run directory or a .keras file; edgecnn exports tf_keras .keras models")
    if options.start is not None:
        raise RecipeError(f"--from chooses among a run's models; pass the run directory ({path.parent}), not {path.name}")
    run = RunDir(path.parent)
    if run.recipe.is_file():
        recipe = run.load_recipe()
        kind = _kind_of_file(path, run)
        if "qat" in kind and mode != "int8":
            raise RecipeError(f"{path.name} is a QAT model: it converts only to --quantize int8, not {mode}")
        return Source(path, kind, run, recipe, _model_name(recipe, path), run.float_model)
    return Source(path, "user", None, None, path.stem, path)


def _run_source(run: RunDir, options: ExportOptions, mode: str) -> Source:
    open_run(run.path)
    recipe = run.load_recipe()
    start = options.start
    if start is not None and start not in STARTS:
        raise RecipeError(f"--from {start!r} is not one of {', '.join(STARTS)}")
    if start == "qat" and mode != "int8":
        raise RecipeError(f"--from qat converts only to --quantize int8 (a QAT model holds int8 ranges), not {mode}")
    if start is None:
        if mode == "int8" and run.qat_model.is_file():
            start = "qat"
        else:
            start = "pruned" if run.pruned_model.is_file() else "float"
    path = {"float": run.float_model, "pruned": run.pruned_model, "qat": run.qat_model}[start]
    made_by = {"float": f"edgecnn train DATA --out {run.path}", "pruned": f"edgecnn prune {run.path}",
               "qat": f"edgecnn qat {run.path}"}[start]
    run.require(path, made_by)
    return Source(path, _kind_of_file(path, run), run, recipe, _model_name(recipe, path), run.float_model)


def _kind_of_file(path: Path, run: RunDir) -> str:
    if is_qat_archive(path):
        return "pruned+qat" if qat_info(path).get("start_kind") == "pruned" else "qat"
    return "pruned" if path.name == run.pruned_model.name else "float"


def _model_name(recipe: Recipe, path: Path) -> str:
    return model_name(recipe, path.stem)


def quantization_source(kind: str, mode: str) -> str:
    if mode != "int8":
        return "pruned" if kind == "pruned" else "float"
    if kind in ("qat", "pruned+qat"):
        return kind
    return "pruned+ptq" if kind == "pruned" else "ptq"


# --- spec, labels, calibration ---------------------------------------------------------------------------

def input_spec_for(source: Source, model, options: ExportOptions) -> InputSpec:
    shape = static_input_shape(model)
    if source.run is not None:
        if any(v is not None for v in (options.channel_order, options.mean, options.std)):
            raise RecipeError("--mean/--std/--channel-order describe a user's .keras model; a run's recipe already "
                              "fixes them")
        spec = input_spec(source.recipe)
        if (spec.height, spec.width, spec.channels) != tuple(shape[1:]):
            raise ModelError(f"{source.keras_path} takes {shape[1:]} but the run's recipe says "
                             f"{[spec.height, spec.width, spec.channels]}; re-train or fix recipe.yaml")
        return spec
    return InputSpec.from_input_shape(shape, channel_order=options.channel_order, mean=options.mean, std=options.std)


def labels_for(source: Source, num_classes: int, options: ExportOptions) -> list[str] | None:
    if options.labels_file is not None:
        labels = labels_from_file(options.labels_file)
    elif source.run is not None:
        labels = source.run.labels()
    else:
        return None  # from the calibration folder, else class indices
    if len(labels) != num_classes:
        where = options.labels_file or source.run.labels_file
        raise ModelError(f"{where} lists {len(labels)} labels but the model has {num_classes} outputs; "
                         "give one label per output, in order")
    return labels


def calibrate(source: Source, spec: InputSpec, labels: list[str] | None, num_classes: int, options: ExportOptions,
              plan: ExportPlan):
    """The plan's calibration images: the --calibration-data folder, or the run's train split."""
    if plan.calibration == "folder":
        return calibration.from_folder(options.calibration_data, spec, labels=labels, num_classes=num_classes)
    if plan.calibration == "run":
        return calibration.from_run(source.run, spec)
    raise DataError(f"--quantize int8 of {source.keras_path.name} needs representative images: add "
                    "--calibration-data DIR (one sub-folder of images per class)")


# --- the export -----------------------------------------------------------------------------------------

def export(path, options: ExportOptions | None = None, *, post_check: PostCheck | None = None,
           progress: bool = True, models: dict | None = None) -> ExportResult:
    """Export ``path`` (a run directory or a .keras file) as ``options`` say; see the module docstring.

    ``models``: a dict that caches loaded Keras models by path across several exports.
    """
    options = options or ExportOptions()
    say = _say if progress else (lambda message: None)
    plan = plan_export(options, _recipe_near(Path(path)))
    mode, io, target = plan.mode, plan.io, plan.target
    source = resolve_source(path, options, mode)
    out = check_out(options.out or default_out(source, mode, target))
    model = _load(source.keras_path, models)
    spec = input_spec_for(source, model, options)
    num_classes = int(model.output_shape[-1])
    labels = labels_for(source, num_classes, options)
    qsource = quantization_source(source.kind, mode)
    calibration = calibrate(source, spec, labels, num_classes, options, plan) if mode == "int8" else None
    labels = labels or (calibration.labels if calibration is not None else None)
    say(_describe(mode, qsource, source, calibration))

    data = convert(model, mode, io=io,
                   representative=calibration.representative_dataset() if calibration is not None else None)
    checks = run_checks(data, mode, io, target)
    metadata = _metadata(source, spec, labels or [str(i) for i in range(num_classes)], mode, qsource, target)
    if io == "uint8":  # raw pixels in, as MediaPipe feeds them: see raw_pixels
        metadata.mean, metadata.std = raw_pixel_normalization(data, metadata.channels)
    data = embed_metadata(data, metadata)
    result = ExportResult(path=out, mode=mode, io=io, target=target, source=source, quantization_source=qsource,
                          size_bytes=len(data), gzip_bytes=len(gzip.compress(data, compresslevel=9)),
                          metadata=metadata, spec=spec, labels=list(metadata.labels),
                          calibration=calibration.to_dict() if calibration is not None else None, checks=checks)
    if labels is None:
        result.notes.append("no labels given: the model's metadata names classes by index; add --labels FILE")
    _write(result, data, post_check)
    if target == "edgetpu" and options.compile_edgetpu:
        _compile(result, data, metadata)
    return result


def export_modes(path, modes, options: ExportOptions | None = None, *, progress: bool = True,
                 post_check: PostCheck | None = None) -> list[ExportResult]:
    """One export per ``--quantize`` mode, loading each Keras model once (``options.out`` must be unset)."""
    options = options or ExportOptions()
    if options.out is not None and len(modes) > 1:
        raise RecipeError("--out names one file; leave it out to export several modes")
    models: dict = {}
    return [export(path, dataclasses.replace(options, quantize=mode), post_check=post_check, progress=progress,
                   models=models) for mode in modes]


def _load(path: Path, models: dict | None):
    if models is None:
        return load_keras_model(path)
    if path not in models:
        models[path] = load_keras_model(path)
    return models[path]


def _describe(mode: str, qsource: str, source: Source, calibration) -> str:
    if calibration is None:
        return f"{MODE_FILE_NAMES[mode]}: converting {source.keras_path.name}"
    how = ("quantization-aware training ranges from " if "qat" in qsource
           else "post-training quantization of ") + source.keras_path.name
    return f"int8: {how}, calibrated on {len(calibration.images)} images ({calibration.source})"


def _metadata(source: Source, spec: InputSpec, labels: list[str], mode: str, qsource: str,
              target: str) -> ModelMetadata:
    return ModelMetadata(
        labels=list(labels), height=spec.height, width=spec.width, channels=spec.channels,
        channel_order=spec.channel_order, mean=list(spec.mean), std=list(spec.std), resize=spec.resize,
        model_name=source.model_name, quantization=mode, quantization_source=qsource, target=target,
        recipe=source.recipe.to_dict() if source.recipe is not None else {"source": source.keras_path.name},
        edgecnn_version=__version__)


def _recipe_near(path: Path) -> Recipe | None:
    """The recipe of the run ``path`` is (or lies in), for defaults such as export.io; None for user models."""
    run = RunDir(path if path.is_dir() else path.parent)
    return run.load_recipe() if run.exists() else None


def _write(result: ExportResult, data: bytes, post_check: PostCheck | None) -> None:
    """The bytes into a candidate file beside ``result.path``, checked, then renamed onto it; ``result`` is not touched."""
    with atomic_path(result.path) as candidate:
        candidate.write_bytes(data)
        if post_check is not None:
            post_check(result, candidate)


def _compile(result: ExportResult, data: bytes, metadata: ModelMetadata) -> None:
    """Run edgetpu_compiler when present; its output gets the same metadata (the compiler may drop it)."""
    compiler = edgetpu.find_edgetpu_compiler()
    if compiler is None:
        result.notes.append(edgetpu.compiler_hint())
        result.checks["edgetpu"]["compiled_path"] = None
        return
    try:
        report = edgetpu.compile_for_edgetpu(result.path, compiler=compiler)
    except RuntimeUnavailable as exc:
        result.notes.append(str(exc))
        return
    compiled = Path(report.compiled_path)
    write_bytes(compiled, embed_metadata(compiled.read_bytes(), dataclasses.replace(metadata, content_hash="")))
    result.compiled_path = compiled
    result.checks["edgetpu_compiler"] = report.to_dict()


def summary_lines(result: ExportResult) -> list[str]:
    """What the CLI prints after an export."""
    lines = [f"wrote {result.path}: {result.size_bytes:,} bytes ({result.gzip_bytes:,} gzipped), "
             f"{MODE_FILE_NAMES[result.mode]} from {result.source.keras_path.name} ({result.quantization_source}), "
             f"io {result.io}, target {result.target}"]
    if "int8" in result.checks:
        lines.append("full integer: no float tensors inside the graph")
    if "gpu" in result.checks:
        lines.append(gpu_rules.format_report(gpu_rules.GpuReport(**result.checks["gpu"])))
    if "edgetpu" in result.checks:
        report = result.checks.get("edgetpu_compiler") or result.checks["edgetpu"]
        lines.append(edgetpu.format_report(edgetpu.EdgeTpuReport.from_dict(report)))
    if result.compiled_path:
        lines.append(f"compiled for the Edge TPU: {result.compiled_path}")
    lines += [f"note: {note}" for note in result.notes]
    return lines
