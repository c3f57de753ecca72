"""``edgecnn benchmark RUN``: every format of a run side by side (training half: exports need TensorFlow)."""

from __future__ import annotations

import json

import click

from edgecnn.recipe import default_value

TABLE_COLUMNS = (
    ("format", "format"), ("source", "source"), ("status", "status"), ("accuracy_pct", "accuracy %"),
    ("agreement_pct", "top-1 agree %"), ("size_kb", "size KB"), ("gzip_kb", "gzip KB"), ("latency_ms_p50", "p50 ms"),
    ("file", "file"),
)


@click.command("benchmark")
@click.argument("run")
@click.option("--threads", type=int, default=None,
              help="Interpreter threads for the latency column. "
                   f"Default: the recipe's benchmark.threads ({default_value('benchmark.threads')}).")
@click.option("--formats", "formats_text", default=None,
              help="Comma-separated subset of keras, float-fp32, float-fp16, float-dynamic, float-int8, pruned-fp32, "
                   "pruned-fp16, pruned-dynamic, pruned-int8, qat-int8 (default: all): the source model, then the mode.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed invokes per format.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed invokes before timing.")
@click.option("--no-export", "no_export", is_flag=True,
              help="Only measure the files already in the run; say which are missing instead of exporting them.")
@click.option("--delegates", "delegates_text", default="cpu", show_default=True,
              help="Comma-separated delegates to run every TFLite format on (cpu,gpu,edgetpu): "
                   "a row per format and delegate, e.g. fp32@gpu.")
@click.option("--prefer", type=click.Choice(["smallest", "fastest"]), default=None,
              help="Which passing file to recommend: the smallest, or the lowest measured p50 latency. "
                   "Default: the run recipe's deploy.prefer (smallest).")
@click.option("--json", "as_json", is_flag=True, help="Print benchmark.json, with the recommendation as 'deploy'.")
def benchmark(run, threads, formats_text, runs, warmup, no_export, delegates_text, prefer, as_json):
    """Accuracy, top-1 agreement, size, gzip size and p50 latency of every format of RUN.

    Writes benchmark.json, benchmark.csv and benchmark.png (accuracy against latency) into RUN,
    and deploy.json: the file to deploy by the recipe's deploy rule (the smallest or fastest on
    the target that passes the gates), or why none is recommended (exit code 0 even then: the
    table is the product; `pipeline` exits 3). A format that cannot be made or measured shows why
    in its status instead of stopping the table.
    """
    from edgecnn.deploy import decision_lines, recommend, rule_from_recipe, write_decision
    from edgecnn.recipe import default_recipe
    from edgecnn.rundir import RunDir
    from edgecnn.training.evaluate.benchmark import (
        BenchmarkSettings,
        benchmark_run,
        parse_formats,
        progress_to_stderr,
        write_artifacts,
    )

    formats = parse_formats(formats_text)
    rundir = RunDir(run)
    recipe = rundir.load_recipe() if rundir.exists() else default_recipe()
    rule = rule_from_recipe(recipe, prefer)
    if threads is None:
        threads = recipe.benchmark.threads
    delegates = tuple(dict.fromkeys(d.strip() for d in delegates_text.split(",") if d.strip()))
    settings = BenchmarkSettings(threads=threads, runs=runs, warmup=warmup, export_missing=not no_export,
                                 delegates=delegates)
    result = benchmark_run(run, formats, settings, progress=progress_to_stderr)
    paths = write_artifacts(run, result)
    decision = recommend(result, rule)
    deploy = write_decision(run, decision)
    click.echo(f"wrote {paths['json']}, {paths['csv'].name}, {paths['png'].name} and {deploy.name}", err=True)
    if as_json:
        click.echo(json.dumps(result | {"deploy": decision}, indent=2))
        return
    echo_benchmark_table(result)
    for line in decision_lines(decision):
        click.echo(line)


def echo_benchmark_table(result: dict) -> None:
    """The table of a benchmark result (as in benchmark.json), and why any row failed."""
    from edgecnn.runtime.profile.reports import format_table

    rows = [_display_row(row) for row in result["rows"]]
    click.echo(f"{result['run']}: {result['test_images']} test images, latency at {result['threads']} thread(s), "
               f"{result['environment']['cpu_model']}")
    click.echo(format_table(TABLE_COLUMNS, rows))
    for row in result["rows"]:
        if row["status"] != "ok":
            click.echo(f"{row['format']}: {row['status']}: {row['note']}")


def _display_row(row: dict) -> dict:
    def pct(value):
        return None if value is None else 100.0 * value

    def kb(value):
        return None if value is None else value / 1024.0

    return {**row, "accuracy_pct": pct(row["accuracy"]), "agreement_pct": pct(row["top1_agreement"]),
            "size_kb": kb(row["size_bytes"]), "gzip_kb": kb(row["gzip_bytes"])}
