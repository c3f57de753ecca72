"""``edgecnn parity REFERENCE CANDIDATE --data ...``: does a (quantized) model agree with its original?

Thin: resolve options, call ``edgecnn.parity`` (imported inside the body, so the CLI stays
light), print the report or ``--json`` on stdout, then apply the gates. A failed gate exits with
code 3 (``GateFailed``) after the report is printed, so CI logs show why.

Two .tflite files need only the device install (``edgecnn.parity`` is TF-free). A .keras file
brings in the training half's loader; without TensorFlow that is a one-line "pip install
edgecnn[train]" error.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgecnn.cli.options import ChannelValues
from edgecnn.errors import EXTRA_OF_MODULE


def _loader(*paths):
    """The training half's ``load_predictor`` (Keras and TFLite) when a .keras file is compared, else parity's."""
    from edgecnn.parity import predictors

    keras_files = [p for p in paths if Path(p).suffix == ".keras"]
    if not keras_files:
        return predictors.load_predictor
    try:
        from edgecnn.training.evaluate.keras_predictor import load_predictor
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] not in EXTRA_OF_MODULE:
            raise
        for path in paths:  # a missing or wrong file is still the first thing to say
            predictors.check_model_path(path)
        raise predictors.keras_unavailable(keras_files[0], exc.name) from None
    return load_predictor


def _predictor(load_predictor, path, threads, delegate):
    """``load_predictor``'s predictor, or a TFLite one on ``delegate`` (Keras models run where TensorFlow puts them)."""
    from edgecnn.errors import RecipeError
    from edgecnn.parity.predictors import TFLitePredictor, check_model_path

    if delegate == "cpu":
        return load_predictor(path, threads=threads)
    checked = check_model_path(path)
    if checked.suffix == ".keras":
        raise RecipeError(f"--reference-delegate/--candidate-delegate {delegate} applies to .tflite files, not {checked}")
    return TFLitePredictor(checked, threads=threads, delegate=delegate)


def _attention(ref, cand, parity_data, threads) -> dict:
    """parity --attention's summary: Grad-CAM for a Keras model (training half), CAM/occlusion for a .tflite."""
    from edgecnn.parity.attention import TFLiteAttention, attention_agreement
    from edgecnn.parity.core import reconcile_labels

    def source(predictor):
        if predictor.kind == "keras":
            from edgecnn.training.explain.attention import KerasAttention

            return KerasAttention(predictor)
        return TFLiteAttention(predictor.path, threads=threads)

    labels, _ = reconcile_labels(ref, cand, parity_data)
    return attention_agreement(source(ref), source(cand), parity_data.paths, labels)


@click.command("parity")
@click.argument("reference", type=click.Path(path_type=str))
@click.argument("candidate", type=click.Path(path_type=str))
@click.option("--data", required=True, type=click.Path(path_type=str),
              help="A run directory (uses its --split) or a folder of images, one subfolder per class.")
@click.option("--split", default="test", show_default=True, type=click.Choice(["train", "val", "test"]),
              help="Split of a run directory to compare on.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON on stdout.")
@click.option("--max-disagreement", type=float, default=None,
              help="Fail (exit 3) when more than this fraction of images disagree on top-1 (0.01 = 1%).")
@click.option("--max-accuracy-drop", type=float, default=None,
              help="Fail (exit 3) when the candidate's accuracy is lower by more than this many percentage points.")
@click.option("--per-layer", is_flag=True,
              help="Rank the float model's layers by int8 error (TensorFlow's QuantizationDebugger); writes a CSV.")
@click.option("--threads", type=int, default=None, help="Interpreter threads for .tflite models.")
@click.option("--limit", type=int, default=None, help="Compare on N images only (a fixed random subset, so every class can appear).")
@click.option("--mean", type=ChannelValues(), default=None, help="Normalization mean for a model that declares none, e.g. 127.5 or 123.7,116.3,103.5.")
@click.option("--std", type=ChannelValues(positive=True), default=None, help="Normalization std for a model that declares none.")
@click.option("--channel-order", type=click.Choice(["RGB", "BGR", "GRAY"]), default=None,
              help="Channel order for a model that declares none.")
@click.option("--reference-delegate", type=click.Choice(["cpu", "gpu", "edgetpu"]), default="cpu", show_default=True,
              help="Where a .tflite REFERENCE runs.")
@click.option("--candidate-delegate", type=click.Choice(["cpu", "gpu", "edgetpu"]), default="cpu", show_default=True,
              help="Where a .tflite CANDIDATE runs: give the same file twice with --candidate-delegate gpu to see "
                   "what the GPU's arithmetic does to it.")
@click.option("--attention", is_flag=True,
              help="Also compare where the models look: heatmaps (Grad-CAM for .keras, CAM for .tflite) for the "
                   "reference's top class, Spearman and top-20% IoU per class, on at most 200 images.")
def parity(reference, candidate, data, split, as_json, max_disagreement, max_accuracy_drop, per_layer, threads,
           limit, mean, std, channel_order, reference_delegate, candidate_delegate, attention):
    """Compare CANDIDATE with REFERENCE (.keras or .tflite, any pairing) on the same images.

    Reports top-1/top-5 agreement, score error, both accuracies, per-class changes and the images
    where they disagree. With --data a run directory, the report is saved there as
    parity_<candidate>.json (and parity_layers_<candidate>.csv with --per-layer).
    """
    from edgecnn.atomic import _json_default, write_json
    from edgecnn.errors import DataError
    from edgecnn.parity.core import run_parity
    from edgecnn.parity.data import load_parity_data
    from edgecnn.parity.gates import check_gates, validate_gates
    from edgecnn.parity.predictors import SpecFlags
    from edgecnn.parity.report import format_report, report_name
    from edgecnn.rundir import RunDir

    if threads is not None and threads < 1:
        raise DataError(f"--threads must be at least 1, got {threads}")
    # Check the gates' values before minutes of work, not after.
    validate_gates(max_disagreement, max_accuracy_drop)
    flags = SpecFlags(channel_order=channel_order, mean=mean, std=std)
    load_predictor = _loader(reference, candidate)
    ref = _predictor(load_predictor, reference, threads, reference_delegate)
    cand = _predictor(load_predictor, candidate, threads, candidate_delegate)
    parity_data = load_parity_data(data, split=split, limit=limit)
    report = run_parity(ref, cand, parity_data, flags=flags, progress=True)
    if attention:
        report.attention = _attention(ref, cand, parity_data, threads)

    run = RunDir(data)
    saved = []
    if run.exists():
        saved.append(write_json(run.path / f"parity_{report_name(cand.path)}.json", report.to_dict()))
    layers_text = None
    if per_layer:
        from edgecnn.training.evaluate.layer_debug import per_layer_report

        csv_path, layers_text = per_layer_report(ref, cand, parity_data, run if run.exists() else None)
        saved.append(csv_path)

    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, default=_json_default))
    else:
        click.echo(format_report(report))
        if layers_text:
            click.echo("\n" + layers_text)
        for path in saved:
            click.echo(f"wrote {path}")
    if as_json and layers_text:
        click.echo(layers_text, err=True)
    for warning in check_gates(report, max_disagreement, max_accuracy_drop):
        click.echo(f"warning: {warning}", err=True)
