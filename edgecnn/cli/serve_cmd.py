"""``edgecnn serve``: classify images over HTTP, with metrics and health checks (``edgecnn[serve]``)."""

from __future__ import annotations

import click


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", default=None, help="Also run the live loop on this source (camera index, file, URL); "
                                             "its frames and fps appear in /metrics and /readyz.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but loopback needs --token-file or --insecure.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="File holding the bearer token clients must send (Authorization: Bearer <token>).")
@click.option("--insecure", is_flag=True, help="Allow a non-local --host without a token (prints a warning).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Interpreters serving requests in parallel.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="Threads per interpreter.")
@click.option("--max-body", "max_body_mb", type=click.FloatRange(0, 1024, min_open=True), default=16.0,
              show_default=True, help="Largest request body, in MB.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=4096 * 4096, show_default=True,
              help="Largest image (width x height), checked from its header before decoding.")
@click.option("--max-images", type=click.IntRange(1, 1024), default=16, show_default=True,
              help="Most images in one multipart request.")
@click.option("--max-concurrent", type=click.IntRange(1, 1024), default=4, show_default=True,
              help="Classify requests served at once; more get 503 with Retry-After.")
@click.option("--body-timeout", type=click.FloatRange(0, 3600, min_open=True), default=30.0, show_default=True,
              help="Seconds a client may take to send a request body (then 408).")
@click.option("--drift-reference", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of held-out images (the test split): live predictions are compared with the model's "
                   "outputs on it (PSI in /metrics, docs/serve.md).")
def serve(model, source, host, port, token_file, insecure, workers, threads, max_body_mb, max_pixels, max_images,
          max_concurrent, body_timeout, drift_reference):
    """Serve MODEL.tflite over HTTP: POST /v1/classify, GET /v1/model, /healthz, /readyz, /metrics, /openapi.json."""
    from edgecnn.serve.app import Limits
    from edgecnn.serve.server import ServeOptions, serve as run_server

    limits = Limits(max_body_bytes=int(max_body_mb * 1024 * 1024), max_pixels=max_pixels, max_images=max_images,
                    max_concurrent=max_concurrent, body_timeout_s=body_timeout)
    options = ServeOptions(host=host, port=port, token_file=token_file, insecure=insecure, source=source,
                           drift_reference=drift_reference, workers=workers, threads=threads)
    run_server(model, options, limits, warn=_warn, info=lambda message: click.echo(message, err=True))


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)
