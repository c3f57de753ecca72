"""``edgecnn models``, ``edgecnn train``, ``edgecnn evaluate``: the training half's commands.

TensorFlow is imported inside the command bodies only, so listing commands stays fast.
"""

from __future__ import annotations

import json

import click

from edgecnn.recipe import default_value
from edgecnn.training.fit.schedule import AUTO_MIN_EPOCHS, AUTO_MIN_STEPS

DEFAULT_SIZE = default_value("model.size")


def _default(section: str, key: str):
    """The recipe dataclasses' default, so --help never drifts from what training uses."""
    return default_value(f"{section}.{key}")



@click.command("models")
@click.option("--size", type=int, default=DEFAULT_SIZE, show_default=True,
              help="Input size (pixels) for params/MACs.")
@click.option("--alpha", type=float, default=None, help="Width multiplier (default: each model's own).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output on stdout.")
def models(size, alpha, as_json):
    """List the registered architectures with params and MACs at --size, and which have ImageNet weights."""
    from edgecnn.training.models.mobilenet import DEFAULT_MODEL, MODELS, build_model, model_stats
    from edgecnn.training.models.pretrained import pretrained_options

    rows = []
    for name, spec in MODELS.items():
        model = build_model(name, num_classes=10, size=size, alpha=alpha)
        params, macs = model_stats(model)
        rows.append({"name": name, "family": spec.family, "alpha": spec.alpha if alpha is None else alpha,
                     "depth": spec.depth, "params": params, "macs": macs, "default": name == DEFAULT_MODEL,
                     "description": spec.description})
    pretrained = pretrained_options()
    if as_json:
        click.echo(json.dumps({"size": size, "num_classes": 10, "models": rows, "pretrained": pretrained}, indent=2))
        return
    click.echo(f"{'name':<20} {'family':<14} {'alpha':>5} {'depth':>5} {'params':>10} {'MMACs':>9}  description")
    for row in rows:
        mark = " (default)" if row["default"] else ""
        click.echo(f"{row['name']:<20} {row['family']:<14} {row['alpha']:>5g} {row['depth']:>5g} "
                   f"{row['params']:>10,} {row['macs'] / 1e6:>9.2f}  {row['description']}{mark}")
    click.echo(f"(params and multiply-accumulates per image at {size}x{size}x3, 10 classes)")
    click.echo("\npretrained ImageNet weights (edgecnn train DATA --weights imagenet --model NAME --alpha A --size S):")
    for option in pretrained:
        click.echo(f"  {option['architecture']:<14} alpha {'/'.join(f'{a:g}' for a in option['alphas'])} at "
                   f"{'/'.join(map(str, option['sizes']))} px, RGB ({option['backbone']})")


@click.command("train")
@click.argument("data")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default: runs/<DATA name>).")
@click.option("--recipe", "recipe_file", type=click.Path(dir_okay=False), default=None,
              help="Start from a recipe YAML (models/*.yaml); options below override it.")
@click.option("--model", default=None,
              help=f"Architecture (see 'edgecnn models'); default {_default('model', 'architecture')}.")
@click.option("--alpha", type=float, default=None, help="Width multiplier (default: the model's own).")
@click.option("--depth", type=float, default=None,
              help="Depth multiplier on blocks per stage (default: the model's own).")
@click.option("--size", type=int, default=None, help=f"Input size in pixels (square); default {DEFAULT_SIZE}.")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None,
              help="3 for colour (default), 1 for grayscale.")
@click.option("--weights", default=None,
              help="Start from pretrained weights: 'imagenet' (mobilenet_v1/v2 at the alphas and sizes "
                   "'edgecnn models' lists; downloaded once into ~/.keras/models), another run, a .keras model "
                   "or a Keras .h5 weights file. Trains the new head first, then fine-tunes everything.")
@click.option("--epochs", type=int, default=None,
              help=f"Maximum epochs (default: auto, at least {AUTO_MIN_EPOCHS} epochs and {AUTO_MIN_STEPS} steps; "
                   "early stopping may end sooner).")
@click.option("--batch-size", type=int, default=None,
              help=f"Batch size (default {_default('train', 'batch_size')}; global across GPUs).")
@click.option("--lr", type=float, default=None,
              help=f"Peak learning rate of Adam with cosine decay (default {_default('train', 'lr')}).")
@click.option("--label-smoothing", type=float, default=None,
              help=f"Label smoothing (default {_default('train', 'label_smoothing')}).")
@click.option("--patience", type=int, default=None,
              help=f"Early stopping: epochs without a lower validation loss (default {_default('train', 'patience')}).")
@click.option("--seed", type=int, default=None,
              help=f"Seed of the split, initialisation and augmentation (default {_default('data', 'seed')}).")
@click.option("--no-augment", is_flag=True,
              help="Switch off augmentation (flip, rotation, zoom, shift, brightness, contrast).")
@click.option("--no-flip", is_flag=True, help="Keep augmentation but never mirror images (text, digits, signs).")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last completed epoch.")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out.")
@click.option("--mixed-precision", is_flag=True, help="mixed_float16 on a GPU (the softmax stays float32).")
@click.option("--strategy", type=click.Choice(["default", "mirrored"]), default="default", show_default=True,
              help="tf.distribute strategy; mirrored = all GPUs of this machine.")
def train(data, out, recipe_file, model, alpha, depth, size, channels, weights, epochs, batch_size, lr,
          label_smoothing, patience, seed, no_augment, no_flip, resume, overwrite, mixed_precision, strategy):
    """Train a float model from DATA: a folder with one sub-folder of images per class, or a built-in
    dataset (digits, shapes). Writes the run directory that every later stage reads."""
    from pathlib import Path

    from edgecnn.recipe import load_recipe
    from edgecnn.training.fit.train import train_run

    recipe = load_recipe(recipe_file) if recipe_file else None
    out = out or str(Path("runs") / (Path(data).name or "run"))
    run = train_run(data, out, recipe=recipe, resume=resume, overwrite=overwrite, mixed_precision=mixed_precision,
                    strategy=strategy, flip=False if no_flip else None, model=model, alpha=alpha, depth=depth,
                    size=size, channels=int(channels) if channels else None, epochs=epochs, batch_size=batch_size,
                    lr=lr, label_smoothing=label_smoothing, patience=patience, seed=seed, weights=weights,
                    augment=False if no_augment else None)
    click.echo(f"next: edgecnn evaluate {run.path}", err=True)


@click.command("evaluate")
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--data", default=None, help="Evaluate on another class-folder tree with the run's classes.")
@click.option("--split", type=click.Choice(["test", "val", "train"]), default="test", show_default=True,
              help="Which split of the run to evaluate (ignored with --data).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result on stdout.")
def evaluate(run, data, split, as_json):
    """Accuracy, per-class precision/recall/F1 and confusion matrix of RUN's float model."""
    from edgecnn.training.evaluate.evaluation import evaluate_run

    result = evaluate_run(run, data=data, split=split)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    click.echo(format_evaluation(result))


def format_evaluation(result: dict) -> str:
    """The terminal table of an evaluation: accuracy, per-class scores, and the confusion matrix (up to 20 classes)."""
    where = f"split {result['split']}" if "split" in result else result["data"]
    lines = [f"{result['run']} ({result['model']}) on {where}: accuracy {result['accuracy']:.4f} "
             f"over {result['num_samples']} images", ""]
    width = max(9, *(len(label) for label in result["labels"]))
    lines.append(f"{'class':<{width}} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}")
    rows = list(result["per_class"].items()) + [("macro avg", result["macro_avg"]),
                                                ("weighted", result["weighted_avg"])]
    for label, s in rows:
        lines.append(f"{label:<{width}} {s['precision']:>9.4f} {s['recall']:>9.4f} {s['f1']:>9.4f} {s['support']:>8}")
    if len(result["labels"]) <= 20:
        lines += ["", "confusion matrix (rows: true, columns: predicted)"]
        counts = [len(str(v)) for row in result["confusion_matrix"] for v in row]
        cell = max(4, *counts, *(len(label) for label in result["labels"])) + 1
        lines.append(" " * width + "".join(f"{label:>{cell}}" for label in result["labels"]))
        for label, row in zip(result["labels"], result["confusion_matrix"]):
            lines.append(f"{label:<{width}}" + "".join(f"{v:>{cell}}" for v in row))
    lines += ["", f"wrote {result['files']['json']} and {result['files']['confusion_matrix_png']}"]
    return "\n".join(lines)
