"""``edgecnn prune``, ``edgecnn qat`` and ``edgecnn export``: the optimize-and-export commands.

Thin: each command checks its options, calls the training half (imported inside the body, so
``edgecnn --help`` never loads TensorFlow) and prints a summary, or JSON with ``--json``.
Progress goes to stderr.
"""

from __future__ import annotations

import json

import click


def _echo_json(report: dict) -> None:
    from ..atomic import _json_default

    click.echo(json.dumps(report, indent=2, default=_json_default))


# --- prune -------------------------------------------------------------------------------------

@click.command()
@click.argument("run", type=click.Path(path_type=str))
@click.option("--sparsity", type=float, default=None,
              help="Fraction of weights to zero in the pruned layers, in (0, 1). Default: the run's recipe (0.5).")
@click.option("--epochs", type=int, default=None, help="Fine-tune epochs while pruning. Default: the recipe's prune.epochs.")
@click.option("--batch-size", type=int, default=None, help="Default: the recipe's train.batch_size.")
@click.option("--lr", "learning_rate", type=float, default=None,
              help="Fine-tune learning rate. Default: a tenth of the training learning rate.")
@click.option("--json", "as_json", is_flag=True, help="Print the prune report as JSON.")
def prune(run, sparsity, epochs, batch_size, learning_rate, as_json):
    """Magnitude-prune RUN's float model; writes pruned.keras and prune_report.json (float.keras is kept)."""
    from ..rundir import RunDir
    from ..training.prune import check_sparsity, prune_run

    if sparsity is None:
        sparsity = (RunDir(run).load_recipe().get("prune", {}).get("sparsity") if RunDir(run).exists() else None) or 0.5
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
    from ..errors import RecipeError

    if value is not None and value < 1:
        raise RecipeError(f"--{option} must be at least 1, got {value}")
