"""``edgecnn inspect``: a .tflite model's tensors, ops, metadata, size and Edge TPU / GPU fit.

Device half only: reads the flatbuffer with LiteRT's schema, never imports TensorFlow, and
works on any .tflite file (several inputs/outputs, float or quantized, with or without
edgecnn metadata). A corrupt or truncated file gets a one-line error before anything parses it.
"""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("model", type=click.Path(path_type=str))
@click.option("--target", type=click.Choice(["edgetpu", "gpu"]), default=None,
              help="Also check the model against the Edge TPU's or the GPU delegate's supported ops.")
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON (stdout only).")
def inspect(model, target, as_json):
    """Show MODEL's inputs, outputs (shape, dtype, quantization), op histogram, metadata and size."""
    from edgecnn.tflite.inspect import format_info, inspect_file

    info = inspect_file(model)
    for warning in info.warnings:
        click.echo(f"Warning: {warning}", err=True)
    report = _target_report(info, target)
    if as_json:
        data = info.to_dict()
        if data["metadata"] is not None and "labels" not in data["metadata"] and "error" not in data["metadata"]:
            data["metadata"]["labels"] = []
        if target is not None:
            data[target] = report.to_dict()
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_info(info))
    if report is not None:
        click.echo(_format_target(report, target))


def _target_report(info, target):
    if target == "edgetpu":
        from edgecnn.tflite.edgetpu import check_model

        return check_model(info)
    if target == "gpu":
        from edgecnn.tflite.gpu_rules import check_model

        return check_model(info)
    return None


def _format_target(report, target) -> str:
    if target == "edgetpu":
        from edgecnn.tflite.edgetpu import format_report

        return format_report(report)
    from edgecnn.tflite.gpu_rules import format_report

    return format_report(report)
