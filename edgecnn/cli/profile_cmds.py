"""``edgecnn profile``, ``edgecnn compare``, ``edgecnn devices``: latency on the target device.

Device half only: nothing here imports TensorFlow, and the interpreter is imported inside
the command bodies (``edgecnn compare`` and ``edgecnn devices`` never load one).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgecnn.errors import RecipeError

DELEGATE_CHOICES = ("cpu", "gpu", "edgetpu")
PROFILE_COLUMNS = (
    ("threads", "threads"), ("delegate", "delegate"), ("init_ms", "init ms"), ("first_invoke_ms", "1st ms"),
    ("p50", "p50 ms"), ("p90", "p90 ms"), ("p99", "p99 ms"), ("mean", "mean ms"), ("std", "std ms"),
    ("min", "min ms"), ("max", "max ms"), ("throughput_ips", "inf/s"), ("peak_rss_mb", "RSS MB"),
    ("throttled", "throttled"),
)
DEVICE_COLUMNS = (
    ("name", "name"), ("title", "title"), ("architecture", "arch"), ("threads", "threads"),
    ("delegate", "delegate"), ("camera_backend", "camera"), ("python", "python"),
)


def _progress(message: str) -> None:
    click.echo(message, err=True)


@click.command("profile")
@click.argument("model")
@click.option("--threads", "threads_text", default=None,
              help="Thread counts, comma separated, one row each (e.g. 1,2,4). "
                   "Default: the --device profile's, else every usable core.")
@click.option("--runs", type=int, default=100, show_default=True, help="Timed invokes per row.")
@click.option("--warmup", type=int, default=10, show_default=True, help="Untimed invokes before timing.")
@click.option("--delegate", type=click.Choice(DELEGATE_CHOICES), default=None,
              help="Where to run. Default: the --device profile's, else cpu.")
@click.option("--device", "device_name", default=None,
              help="A device profile (see 'edgecnn devices') whose default threads and delegate apply.")
@click.option("--fallback", type=click.Choice(["cpu"]), default=None,
              help="Run on the CPU (with a warning) when the delegate is absent, instead of failing.")
@click.option("--delegate-path", default=None, help="A GPU delegate library (.so) for --delegate gpu.")
@click.option("--edgetpu-device", default=None, help="Which Coral to use: usb, usb:N, pci, pci:N or :N.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout (for 'edgecnn compare').")
@click.option("--out", "out_path", default=None, help="Also write the JSON report to this file.")
def profile(model, threads_text, runs, warmup, delegate, device_name, fallback, delegate_path, edgetpu_device,
            as_json, out_path):
    """Measure MODEL's latency and memory on this machine.

    One row per thread count: model load/init time, first invoke, then p50/p90/p99, mean, std,
    min and max over --runs timed invokes, throughput and peak resident memory, plus the CPU,
    OS and (on a Raspberry Pi) the temperature and throttling before and after.
    """
    from edgecnn.atomic import write_json
    from edgecnn.runtime.profile.devices import get_profile
    from edgecnn.runtime.profile.profiler import ProfileSettings, parse_threads, profile_model
    from edgecnn.runtime.profile.reports import format_table
    from edgecnn.runtime.profile.sysinfo import usable_cores

    device_profile = get_profile(device_name) if device_name else None
    if threads_text is not None:
        threads = parse_threads(threads_text)
    else:
        threads = (device_profile.default_threads() if device_profile else usable_cores(),)
    delegate = delegate or (device_profile.delegate if device_profile else "cpu")
    _check_out(out_path)

    settings = ProfileSettings(threads=threads, runs=runs, warmup=warmup, delegate=delegate, fallback=fallback,
                               delegate_path=delegate_path, edgetpu_device=edgetpu_device)
    report = profile_model(model, settings, device_profile=device_name, progress=_progress)

    if out_path is not None:
        write_json(out_path, report)
        _progress(f"report written to {out_path}")
    for warning in report["warnings"]:
        _progress(f"warning: {warning}")
    if report["throttled"]:
        _progress("warning: the device throttled during the run; latencies are pessimistic (cool it and re-run)")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(_profile_header(report))
    rows = [{**row, **row["latency_ms"]} for row in report["rows"]]
    click.echo(format_table(PROFILE_COLUMNS, rows))


def _check_out(out_path) -> None:
    """Refuse an unusable --out before spending the time to profile."""
    if out_path is None:
        return
    out = Path(out_path)
    if out.is_dir():
        raise RecipeError(f"--out {out} is a folder; give a file name such as {out / 'profile.json'}")
    if not out.parent.is_dir():
        raise RecipeError(f"cannot write --out {out}: folder {out.parent} does not exist; create it or choose another path")


def _profile_header(report: dict) -> str:
    model, env = report["model"], report["environment"]
    inputs = ", ".join(f"{t['name']} {'x'.join(map(str, t['shape']))} {t['dtype']}" for t in model["inputs"])
    lines = [
        f"model:   {model['path']} ({model['size_bytes']:,} bytes; inputs: {inputs})",
        f"device:  {report['device']}",
        f"system:  {env['cpu_model']}, {env['usable_cores']} usable cores, {env['os']}, Python {env['python']}",
        f"runtime: {report['runtime']} {report['runtime_version']}; "
        f"{report['rows'][0]['warmup']} warm-up + {report['rows'][0]['runs']} timed runs per row",
    ]
    temps = [(r["temperature_c_before"], r["temperature_c_after"]) for r in report["rows"]]
    if any(t is not None for pair in temps for t in pair):
        lines.append("temp:    " + ", ".join(f"{b} -> {a} degC" for b, a in temps))
    return "\n".join(lines) + "\n"


@click.command("compare")
@click.argument("reports", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON on stdout.")
def compare(reports, as_json):
    """Tabulate profile reports (from 'edgecnn profile --out/--json') side by side."""
    from edgecnn.runtime.profile.reports import COMPARE_COLUMNS, compare_reports, format_table, load_report

    named = [(Path(path).name, load_report(path)) for path in reports]
    rows, warnings = compare_reports(named)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        click.echo(json.dumps({"rows": rows, "warnings": warnings}, indent=2))
        return
    click.echo(format_table(COMPARE_COLUMNS, rows))


@click.command("devices")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the profiles as JSON on stdout.")
def devices(name, as_json):
    """List the device profiles edgecnn knows, or show one in full."""
    import platform

    from edgecnn.runtime.profile.devices import detect_profile, get_profile, load_profiles
    from edgecnn.runtime.profile.reports import format_table
    from edgecnn.runtime.profile.sysinfo import board_model

    profiles = [get_profile(name)] if name else list(load_profiles().values())
    if as_json:
        click.echo(json.dumps({"devices": [p.to_dict() for p in profiles]}, indent=2))
        return
    if name:
        click.echo(_device_details(profiles[0]))
        return
    here = detect_profile(board_model(), platform.machine())
    rows = [{**p.to_dict(), "name": p.name + (" *" if here and here.name == p.name else "")} for p in profiles]
    click.echo(format_table(DEVICE_COLUMNS, rows))
    if here:
        click.echo(f"\n* this machine looks like {here.name}")
    click.echo("'edgecnn devices NAME' shows a profile's install line, thermals and notes; "
               "'edgecnn profile MODEL --device NAME' uses its defaults.")


def _device_details(profile) -> str:
    lines = [
        f"{profile.name}: {profile.title}",
        f"  architecture:  {profile.architecture}" + (f" ({profile.soc})" if profile.soc else ""),
        f"  os:            {profile.os}" if profile.os else None,
        f"  python:        {profile.python}",
        f"  install:       {profile.install}",
        f"  defaults:      --threads {profile.threads} --delegate {profile.delegate}",
        f"  camera:        {profile.camera_backend}",
        f"  temperature:   {profile.temperature_path}",
        f"  throttling:    {profile.throttling}",
        "  notes:",
    ]
    lines += [f"    - {note}" for note in profile.notes]
    return "\n".join(line for line in lines if line is not None)
