"""``edgecnn models``, ``edgecnn train``, ``edgecnn evaluate``: the training half's commands.

TensorFlow is imported inside the command bodies only, so listing commands stays fast.
"""

from __future__ import annotations

import json

import click

DEFAULT_SIZE = 96


@click.command("models")
@click.option("--size", type=int, default=DEFAULT_SIZE, show_default=True, help="Input size (pixels) for params/MACs.")
@click.option("--alpha", type=float, default=None, help="Width multiplier (default: each model's own).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def models(size, alpha, as_json):
    """List the registered architectures with params and MACs at --size."""
    from ..training.architectures import DEFAULT_MODEL, MODELS, build_model, model_stats

    rows = []
    for name, spec in MODELS.items():
        model = build_model(name, num_classes=10, size=size, alpha=alpha)
        params, macs = model_stats(model)
        rows.append({"name": name, "family": spec.family, "alpha": spec.alpha if alpha is None else alpha,
                     "depth": spec.depth, "params": params, "macs": macs, "default": name == DEFAULT_MODEL,
                     "description": spec.description})
    if as_json:
        click.echo(json.dumps({"size": size, "num_classes": 10, "models": rows}, indent=2))
        return
    click.echo(f"{'name':<20} {'family':<14} {'alpha':>5} {'depth':>5} {'params':>10} {'MMACs':>9}  description")
    for row in rows:
        mark = " (default)" if row["default"] else ""
        click.echo(f"{row['name']:<20} {row['family']:<14} {row['alpha']:>5g} {row['depth']:>5g} "
                   f"{row['params']:>10,} {row['macs'] / 1e6:>9.2f}  {row['description']}{mark}")
    click.echo(f"(params and multiply-accumulates per image at {size}x{size}x3, 10 classes)")
