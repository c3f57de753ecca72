"""The formats ``edgecnn benchmark`` compares: which Keras model of the run each starts from, and how it is exported.

A format's name is its source model, then its mode (``pruned-fp16``, ``float-int8``), as the file's
name in the run is (``export_plan.export_file_name``: model_pruned_fp16.tflite, model_float_int8.tflite).
``qat-int8`` is the int8 file of qat.keras, whose lineage (``qat`` or ``pruned+qat``, from the file's
metadata) the table's source column shows. Names of earlier versions are refused with today's name,
by ``--formats`` and by the recipe's benchmark.formats alike (checked when the recipe loads, before
any training). TF-free: pure data and parsing.
"""

from __future__ import annotations

import dataclasses

from edgecnn.errors import RecipeError, closest


@dataclasses.dataclass(frozen=True)
class Format:
    """One row of the table: which trained model it starts from and how it is exported."""

    name: str
    source: str  # "float" | "qat" | "pruned": the Keras model in the run it is made from
    quantize: str | None  # export mode (none/fp16/dynamic/int8); None for the Keras model itself
    description: str
    # The export metadata's quantization_source values that make an existing file this format.
    provenance: tuple[str, ...] = ()


def _float_modes(source: str, what: str) -> tuple[Format, ...]:
    return (
        Format(f"{source}-fp32", source, "none", f"TFLite float32 of the {what}", (source,)),
        Format(f"{source}-fp16", source, "fp16", f"TFLite float16 weights of the {what}", (source,)),
        Format(f"{source}-dynamic", source, "dynamic",
               f"TFLite dynamic range (int8 weights, float activations) of the {what}", (source,)),
    )


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("keras", "float", None, "Keras float model (TensorFlow)"),
    *_float_modes("float", "float model"),
    Format("float-int8", "float", "int8", "TFLite full integer, post-training quantization of the float model",
           ("ptq",)),
    *_float_modes("pruned", "pruned model"),
    Format("pruned-int8", "pruned", "int8", "TFLite full integer, post-training quantization of the pruned model",
           ("pruned+ptq",)),
    Format("qat-int8", "qat", "int8", "TFLite full integer from quantization-aware training (qat.keras)",
           ("qat", "pruned+qat")),
)}
# Format names before the files said their source model (edgecnn 0.x runs' benchmark.json).
RENAMED = {"fp32": "float-fp32", "fp16": "float-fp16", "dynamic": "float-dynamic", "int8": "float-int8",
           "int8-qat": "qat-int8"}
# A file's metadata quantization_source -> the model it was made from, as the table's source column says it.
LINEAGE = {"float": "float", "pruned": "pruned", "ptq": "float", "pruned+ptq": "pruned", "qat": "qat",
           "pruned+qat": "pruned+qat"}


def parse_formats(text: str | None) -> list[Format]:
    """'keras,float-int8' -> their Formats, in the order given; None -> all of them."""
    if text is None:
        return list(FORMATS.values())
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise RecipeError(f"--formats is empty; choose from {', '.join(FORMATS)}")
    for name in names:
        check_format_name(name)
    return [FORMATS[n] for n in dict.fromkeys(names)]


def check_format_name(name, where: str = "") -> None:
    """A known format name, or a one-line error (an earlier version's name: with today's)."""
    prefix = f"{where}: " if where else ""
    if name in RENAMED:
        raise RecipeError(f"{prefix}format {name!r} is now called {RENAMED[name]!r} (names say the source model); "
                          f"choose from {', '.join(FORMATS)}")
    if name not in FORMATS:
        raise RecipeError(f"{prefix}unknown format {name!r}{closest(str(name), FORMATS)}; "
                          f"choose from {', '.join(FORMATS)}")


def check_recipe_formats(formats: list | None, source: str) -> None:
    """The recipe's benchmark.formats: null (all) or a list of known names."""
    for name in formats or ():
        check_format_name(name, f"{source}: benchmark.formats")
