"""``edgecnn pipeline`` and ``edgecnn demo``."""

from __future__ import annotations

import click

# Command-line flags that override recipe keys.
_OVERRIDES = {
    "model": "model.architecture", "alpha": "model.alpha", "size": "model.size", "epochs": "train.epochs",
    "batch_size": "train.batch_size", "lr": "train.lr", "sparsity": "prune.sparsity", "qat_epochs": "qat.epochs",
    "threads": "benchmark.threads", "weights": "model.weights", "prefer": "deploy.prefer",
}


@click.command()
@click.argument("recipe")
@click.option("--data", required=True, help="Image folder (one sub-folder per class), or digits / shapes.")
@click.option("--out", required=True, type=click.Path(), help="Run directory.")
@click.option("--resume", is_flag=True, help="Continue a run made with the same recipe, skipping finished stages.")
@click.option("--overwrite", is_flag=True, help="Start again, deleting what the run directory holds.")
@click.option("--force", is_flag=True,
              help="Go on past a degenerate float model (one class everywhere, or chance) instead of stopping.")
@click.option("--model", default=None, help="Override model.architecture.")
@click.option("--alpha", type=float, default=None, help="Override model.alpha.")
@click.option("--size", type=int, default=None, help="Override model.size.")
@click.option("--weights", default=None, help="Override model.weights: imagenet, a run, .keras or .h5 file.")
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--batch-size", type=int, default=None, help="Override train.batch_size.")
@click.option("--lr", type=float, default=None, help="Override train.lr.")
@click.option("--sparsity", type=float, default=None, help="Override prune.sparsity.")
@click.option("--qat-epochs", type=int, default=None, help="Override qat.epochs.")
@click.option("--threads", type=int, default=None, help="Override benchmark.threads.")
@click.option("--prefer", type=click.Choice(["smallest", "fastest"]), default=None,
              help="Override deploy.prefer: recommend the smallest passing file or the fastest (measured p50).")
def pipeline(recipe, data, out, resume, overwrite, force, **overrides):
    """Run RECIPE (a YAML file or a shipped recipe's name) end to end into --out.

    Stages: train, evaluate, prune, QAT, export (with parity against the float model),
    benchmark, report.html. Each stage is skipped when its artifact is already present, so
    --resume continues after a crash or Ctrl-C. A degenerate float model stops the pipeline
    before export (exit 3) unless --force. The file to deploy is chosen from the measured table
    by the recipe's deploy rule and written to deploy.json; when every measured file fails the
    deploy gates, nothing is recommended and the pipeline exits 3.
    """
    from edgecnn.pipeline.runner import run_pipeline
    from edgecnn.recipe import apply_overrides, load_recipe

    resolved = apply_overrides(load_recipe(recipe), {_OVERRIDES[k]: v for k, v in overrides.items()})
    run = run_pipeline(resolved, data, out, resume=resume, overwrite=overwrite, force=force)
    _print_verdict(run)


@click.command()
@click.option("--out", default="edgecnn-demo", show_default=True, type=click.Path(), help="Where everything goes.")
@click.option("--data", default="digits", show_default=True, type=click.Choice(["digits", "shapes"]),
              help="Built-in dataset.")
@click.option("--overwrite", is_flag=True, help="Start again instead of continuing an earlier demo.")
def demo(out, data, overwrite):
    """The whole pipeline on built-in data, then the live loop on a generated clip."""
    from edgecnn.pipeline.demo import run_demo
    from edgecnn.rundir import RunDir

    summary = run_demo(out, data=data, overwrite=overwrite)
    _print_verdict(RunDir(summary["run"]))
    click.echo(f"\nlive loop on {summary['live_frames']} frames of held-out digits: "
               f"accuracy {summary['live_accuracy']:.3f}, {summary['live_fps'] or 0:.0f} FPS")
    click.echo("written:")
    for key in ("run", "model", "report", "clip", "live_results"):
        click.echo(f"  {key:13s} {summary[key]}")


def _print_verdict(run) -> None:
    """The benchmark table, the parity verdict (by file name, as the table's file column) and the recommendation."""
    import json
    from pathlib import Path

    from edgecnn.cli.benchmark_cmd import echo_benchmark_table
    from edgecnn.deploy import DEPLOY_FILE, decision_lines

    if run.benchmark_json.is_file():
        echo_benchmark_table(json.loads(run.benchmark_json.read_text(encoding="utf-8")))
    verdicts = []
    for path in sorted(run.path.glob("parity_*.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        name = Path(str((report.get("candidate") or {}).get("path") or path.stem.removeprefix("parity_"))).name
        verdicts.append(f"{name} top-1 agreement {report['top1_agreement']:.1%}, "
                        f"accuracy drop {report['accuracy_drop_pp']:+.2f} pp")
    if verdicts:
        click.echo("parity against the float model (all gates passed): " + "; ".join(verdicts))
    decision = run.path / DEPLOY_FILE
    if decision.is_file():
        for line in decision_lines(json.loads(decision.read_text(encoding="utf-8"))):
            click.echo(line)
