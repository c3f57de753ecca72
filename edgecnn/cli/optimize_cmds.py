"""``edgecnn prune``, ``edgecnn qat`` and ``edgecnn export``: the optimize-and-export commands.

Thin: each command checks its options, calls the training half (imported inside the body, so
``edgecnn --help`` never loads TensorFlow) and prints a summary, or JSON with ``--json``.
Progress goes to stderr.
"""

from __future__ import annotations

import json

import click

from edgecnn.cli.options import ChannelValues, Finite
from edgecnn.recipe import default_value


def _echo_json(report: dict) -> None:
    from edgecnn.atomic import _json_default

    click.echo(json.dumps(report, indent=2, default=_json_default))


# --- prune -------------------------------------------------------------------------------------

@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.option("--sparsity", type=float, default=None,
              help="Fraction of weights to zero in the pruned layers, in (0, 1). "
                   f"Default: the run's recipe ({default_value('prune.sparsity')}).")
@click.option("--epochs", type=int, default=None, help="Fine-tune epochs while pruning. Default: the recipe's prune.epochs.")
@click.option("--batch-size", type=int, default=None, help="Default: the recipe's train.batch_size.")
@click.option("--lr", "learning_rate", type=Finite(0, low_open=True), default=None,
              help="Fine-tune learning rate. Default: a tenth of the training learning rate.")
@click.option("--json", "as_json", is_flag=True, help="Print the prune report as JSON.")
def prune(run, sparsity, epochs, batch_size, learning_rate, as_json):
    """Magnitude-prune RUN's float model; writes pruned.keras and prune_report.json (float.keras is kept)."""
    from edgecnn.rundir import RunDir
    from edgecnn.training.optimize.prune import check_sparsity, prune_run

    if sparsity is None:
        sparsity = (RunDir(run).load_recipe().prune.sparsity if RunDir(run).exists() else None) \
            or default_value("prune.sparsity")
    check_sparsity(sparsity)
    _check_positive("epochs", epochs)
    _check_positive("batch-size", batch_size)
    report = prune_run(run, sparsity=sparsity, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate)
    if as_json:
        _echo_json(report)
        return
    click.echo(f"pruned {len(report['pruned_layers'])} layers to {report['sparsity_of_pruned_layers']:.1%} sparsity "
               f"(target {report['target_sparsity']:.0%}); all kernels {report['sparsity_of_all_kernels']:.1%}")
    acc = report["accuracy"]
    click.echo(f"test accuracy: float {acc['float']:.2%}, pruned {acc['pruned']:.2%} ({acc['num_samples']} images)")
    click.echo(f"not pruned: {', '.join(report['skipped_layers'])}")
    click.echo(f"wrote {RunDir(run).pruned_model} and {RunDir(run).prune_report.name}")


def _check_positive(option: str, value) -> None:
    from edgecnn.errors import RecipeError

    if value is not None and value < 1:
        raise RecipeError(f"--{option} must be at least 1, got {value}")


# --- qat ---------------------------------------------------------------------------------------

@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.option("--epochs", type=int, default=None, help="QAT fine-tune epochs. Default: the recipe's qat.epochs.")
@click.option("--preserve-sparsity", is_flag=True,
              help="Keep a pruned model's zeros through QAT (prune-preserving scheme); starts from pruned.keras.")
@click.option("--from", "start", type=click.Choice(["float", "pruned"]), default=None,
              help="Model to start from. Default: pruned.keras when the run has one, else float.keras.")
@click.option("--batch-size", type=int, default=None, help="Default: the recipe's train.batch_size.")
@click.option("--lr", "learning_rate", type=Finite(0, low_open=True), default=None,
              help="QAT learning rate. Default: a twentieth of the training learning rate.")
@click.option("--json", "as_json", is_flag=True, help="Print the QAT report as JSON.")
def qat(run, epochs, preserve_sparsity, start, batch_size, learning_rate, as_json):
    """Int8 quantization-aware training of RUN's float or pruned model; writes qat.keras and qat_report.json."""
    from edgecnn.rundir import RunDir
    from edgecnn.training.optimize.qat import qat_run

    _check_positive("epochs", epochs)
    _check_positive("batch-size", batch_size)
    report = qat_run(run, epochs=epochs, preserve_sparsity=preserve_sparsity, start=start, batch_size=batch_size,
                     learning_rate=learning_rate)
    if as_json:
        _echo_json(report)
        return
    acc = report["accuracy"]
    click.echo(f"QAT from {report['start']} ({report['scheme']}), {report['epochs']} epoch(s)")
    click.echo(f"test accuracy: float {acc['float']:.2%}, start {acc['start']:.2%}, QAT {acc['qat']:.2%} "
               f"({acc['num_samples']} images)")
    if report["preserve_sparsity"]:
        kept = [name for name, value in report["sparsity"]["before"].items() if value > 0]
        click.echo(f"sparsity kept in {len(kept)} pruned layer(s)")
    click.echo(f"wrote {RunDir(run).qat_model} and {RunDir(run).qat_report.name}")


# --- export ------------------------------------------------------------------------------------

def post_export_check(*, parity: bool = True, as_json: bool = False, **gate_options):
    """The check run on an exported file before it is renamed into place (None: no check).

    The parity gate plugs in here: it receives the ExportResult (``result.path`` the destination,
    ``result.reference_path`` the float original, ``result.run`` the run) and the temporary candidate
    file, and raises GateFailed to refuse the export; the candidate is then removed.
    """
    if not parity:
        return None
    from edgecnn.training.export.parity_gate import parity_post_check

    # With --json, stdout carries only the export result; the parity report goes to stderr.
    return parity_post_check(echo=lambda text: click.echo(text, err=as_json), **gate_options)


@click.command()
@click.argument("source", metavar="RUN_OR_KERAS", type=click.Path(path_type=str))
@click.option("--quantize", type=click.Choice(["none", "fp32", "fp16", "dynamic", "int8"]), default=None,
              help="none (float32), fp16, dynamic (int8 weights) or int8 (full integer, calibrated). "
                   "Default: int8 for --target edgetpu, fp16 for gpu, else none.")
@click.option("--io", type=click.Choice(["int8", "uint8", "float32"]), default=None,
              help=f"Input/output type of an int8 model. Default: the recipe's export.io ({default_value('export.io')}).")
@click.option("--target", type=click.Choice(["cpu", "gpu", "edgetpu"]), default="cpu", show_default=True,
              help="edgetpu: full int8, static shapes, batch 1, op check (+ edgetpu_compiler when installed); "
                   "gpu: float model checked against the GPU delegate's ops.")
@click.option("--out", type=click.Path(path_type=str), default=None,
              help="Output file. Default: RUN/model_<mode>.tflite, or beside the .keras file.")
@click.option("--calibration-data", type=click.Path(path_type=str), default=None,
              help="Folder of images (one sub-folder per class) for int8 calibration. Default: the run's train split.")
@click.option("--labels", "labels_file", type=click.Path(path_type=str), default=None,
              help="Text file with one label per line (for a .keras model; default: the calibration folder's classes).")
@click.option("--from", "start", type=click.Choice(["float", "pruned", "qat"]), default=None,
              help="Which of the run's models to export. Default: qat.keras for int8 when present, "
                   "else pruned.keras, else float.keras.")
@click.option("--mean", type=ChannelValues(), default=None, help="A .keras model's input mean (0..255 scale), e.g. 127.5.")
@click.option("--std", type=ChannelValues(positive=True), default=None, help="A .keras model's input std (0..255 scale), e.g. 127.5.")
@click.option("--channel-order", type=click.Choice(["RGB", "BGR", "GRAY"]), default=None,
              help="A .keras model's input channel order (default RGB, GRAY for 1 channel).")
@click.option("--max-disagreement", type=float, default=None,
              help="Refuse the export (exit 3, no file) when more than this fraction of the run's test images "
                   "change top-1 class against the float model (0.01 = 1%).")
@click.option("--max-accuracy-drop", type=float, default=None,
              help="Refuse the export (exit 3, no file) when test accuracy drops by more than this many "
                   "percentage points against the float model.")
@click.option("--no-parity", is_flag=True,
              help="Skip the parity check that follows every quantized export of a run.")
@click.option("--json", "as_json", is_flag=True, help="Print the export result as JSON.")
@click.option("--format", "out_format", type=click.Choice(["tflite", "savedmodel"]), default="tflite", show_default=True,
              help="savedmodel: the float model as a TensorFlow SavedModel folder for TF Serving (docs/serve.md).")
def export(source, quantize, io, target, out, calibration_data, labels_file, start, mean, std, channel_order,
           max_disagreement, max_accuracy_drop, no_parity, as_json, out_format):
    """Export a run or a .keras model to .tflite, with labels and preprocessing inside the file.

    Every quantized export of a run is then checked against the run's float model on its test split
    (edgecnn parity); the report is saved as parity_<mode>.json in the run.
    """
    from pathlib import Path

    if out_format == "savedmodel":
        from edgecnn.errors import RecipeError

        if quantize not in (None, "none", "fp32") or target != "cpu":
            raise RecipeError("--format savedmodel writes the float model for TF Serving; drop --quantize/--target")
        return _export_savedmodel(source, out, as_json)
    from edgecnn.training.export.exporter import ExportOptions, summary_lines
    from edgecnn.training.export.exporter import export as run_export
    from edgecnn.training.export.parity_gate import check_export_gate_options

    check_export_gate_options(enabled=not no_parity, max_disagreement=max_disagreement,
                              max_accuracy_drop=max_accuracy_drop, mode=quantize, target=target)

    options = ExportOptions(
        quantize=quantize, io=io, target=target, out=Path(out) if out else None,
        calibration_data=Path(calibration_data) if calibration_data else None,
        labels_file=Path(labels_file) if labels_file else None, start=start,
        channel_order=channel_order, mean=mean, std=std)
    result = run_export(source, options, post_check=post_export_check(
        parity=not no_parity, as_json=as_json, max_disagreement=max_disagreement, max_accuracy_drop=max_accuracy_drop))
    if as_json:
        _echo_json(result.to_dict())
        return
    for line in summary_lines(result):
        click.echo(line)


def _export_savedmodel(source, out, as_json):
    from edgecnn.training.export.savedmodel import SIGNATURE, export_savedmodel

    path = export_savedmodel(source, out)
    if as_json:
        _echo_json({"format": "savedmodel", "path": str(path), "signature": SIGNATURE})
    else:
        click.echo(f"wrote {path} (SavedModel, signature {SIGNATURE}: uint8 image -> float32 scores)")
