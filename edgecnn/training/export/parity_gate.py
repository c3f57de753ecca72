"""The parity gate of ``edgecnn export``: check a quantized export against its float original.

``export`` writes the new .tflite to a temporary candidate file and calls
``post_check(result, candidate)`` before renaming it onto ``result.path``. ``parity_post_check``
builds that check: for every quantized export (fp16, dynamic, int8) of a run, it compares the
candidate with the run's float model on the run's test split (the report names ``result.path``,
the file the user will have), prints the report, records a summary in ``result.checks["parity"]`` and, when the
export's gates pass, saves the full report as ``parity_<name>.json`` in the run (``name`` as
``report_name`` derives it from the file: model_int8.tflite -> parity_int8.json). A gate given
on the command line that fails raises ``GateFailed`` (exit code 3) before the rename, so the
export keeps no file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from edgecnn.atomic import write_json
from edgecnn.errors import RecipeError
from edgecnn.export_plan import resolve_mode
from edgecnn.parity.core import run_parity
from edgecnn.parity.data import load_parity_data
from edgecnn.parity.gates import check_gates, validate_gates
from edgecnn.parity.report import format_report, report_name
from edgecnn.training.evaluate.keras_predictor import load_predictor

# The split a run's exports are checked on: held out from training and from calibration.
EXPORT_PARITY_SPLIT = "test"


def check_export_gate_options(*, enabled: bool, max_disagreement: float | None, max_accuracy_drop: float | None,
                              mode: str | None = None, target: str = "cpu") -> None:
    """Contradictory export options, refused before any conversion starts.

    ``mode``/``target`` as given on the command line; ``export_plan.resolve_mode`` says what they export
    (``mode`` None: the target's default), the same answer the exporter gets.
    """
    gates = [name for name, value in (("--max-disagreement", max_disagreement),
                                      ("--max-accuracy-drop", max_accuracy_drop)) if value is not None]
    if gates and not enabled:
        raise RecipeError(f"{' and '.join(gates)} gate the parity check, which --no-parity turns off; drop one of them")
    if gates and resolve_mode(mode, target) == "none":
        raise RecipeError(f"{' and '.join(gates)} gate quantized exports; a float32 export is not checked "
                          "(add --quantize fp16, dynamic or int8)")
    validate_gates(max_disagreement, max_accuracy_drop)


def parity_post_check(*, max_disagreement: float | None = None, max_accuracy_drop: float | None = None,
                      threads: int | None = None, echo: Callable[[str], None] = print) -> Callable:
    """A ``post_check`` for ``training.export.export`` (see the module docstring)."""

    def check(result, candidate: Path) -> None:
        if result.mode == "none":
            return  # float32 is the float model itself; nothing to gate
        run = result.run
        if run is None:
            if max_disagreement is not None or max_accuracy_drop is not None:
                raise RecipeError(
                    f"the parity gates need a run's test split, and {result.source.keras_path.name} is not in a run; "
                    f"check it with 'edgecnn parity {result.source.keras_path} {result.path} --data DIR'"
                )
            result.notes.append(f"parity not checked ({result.source.keras_path.name} is not in a run); run "
                                f"'edgecnn parity {result.source.keras_path} {result.path} --data DIR'")
            return
        destination = Path(result.path)
        reference = load_predictor(result.reference_path, threads=threads)
        predictor = load_predictor(candidate, threads=threads)
        predictor.path = destination  # the report names the file the user will have, not the temporary one
        data = load_parity_data(run.path, split=EXPORT_PARITY_SPLIT)
        report = run_parity(reference, predictor, data, progress=True)
        echo(f"parity against {Path(result.reference_path).name} on the {EXPORT_PARITY_SPLIT} split:")
        echo(format_report(report))
        saved = run.path / f"parity_{report_name(destination)}.json"
        result.checks["parity"] = {
            "reference": str(result.reference_path), "split": EXPORT_PARITY_SPLIT,
            "num_samples": report.num_samples, "top1_agreement": report.top1_agreement,
            "max_abs_error": report.max_abs_error, "mean_abs_error": report.mean_abs_error,
            "reference_accuracy": report.reference["accuracy"], "candidate_accuracy": report.candidate["accuracy"],
            "accuracy_drop_pp": report.accuracy_drop_pp,
            "gates": {"max_disagreement": max_disagreement, "max_accuracy_drop": max_accuracy_drop},
            "report": str(saved),
        }
        for warning in check_gates(report, max_disagreement, max_accuracy_drop):
            echo(f"warning: {warning}")
            result.notes.append(warning)
        write_json(saved, report.to_dict())
        echo(f"wrote {saved}")

    return check
