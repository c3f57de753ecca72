"""``edgecnn doctor``: what the device half finds on this machine."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def doctor(as_json):
    """Show the runtime, OpenCV, delegates and camera backends found."""
    from edgecnn.runtime.doctor import device_report

    report = device_report()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in format_report(report):
        click.echo(line)


def format_report(r: dict) -> list[str]:
    yes_no = {True: "yes", False: "no"}
    runtime = f"{r['runtime']} {r['runtime_version']}" if r["runtime"] else "none"
    lines = [
        f"edgecnn     {r['edgecnn']}",
        f"python      {r['python']} on {r['platform']} ({r['cpus']} CPUs)",
        f"runtime     {runtime} (default threads: {r['default_threads']})",
    ]
    if r["runtime_warning"]:
        lines.append(f"            note: {r['runtime_warning']}")
    window = "window support" if r["opencv_window_support"] else "no window support: use --headless"
    lines.append(f"opencv      {r['opencv']} ({window})")
    lines.append(f"display     {yes_no[r['display']]}")
    for i, (name, d) in enumerate(r["delegates"].items()):
        head = "delegates   " if i == 0 else "            "
        lines.append(f"{head}{name:8s} {'works' if d['available'] else 'fails':8s} {d['detail']}")
    cams = r["cameras"]
    lines.append(f"cameras     V4L2 devices: {', '.join(cams['v4l2_devices']) or 'none'}")
    lines.append(f"            picamera2: {'importable' if cams['picamera2'] else 'not installed'}")
    lines.append(f"            OpenCV camera backends: {', '.join(cams['opencv_backends']) or 'none'}")
    lines.append(f"training    tensorflow {'installed' if r['tensorflow_installed'] else 'not installed (device-only install)'}")
    return lines
