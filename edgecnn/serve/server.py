"""Running the app with uvicorn: bind checks first, then serve until SIGTERM or Ctrl-C.

On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish (up to
``drain_s``), and returns; the attached source is then stopped and the process exits 0, which is
what systemd and container runtimes expect of a clean stop.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading

import uvicorn

from edgecnn.errors import DataError
from edgecnn.runtime.live.sources import find_images
from edgecnn.runtime.preprocess import read_image
from edgecnn.serve.app import Limits, build_app
from edgecnn.serve.drift import DriftMonitor, summarize
from edgecnn.serve.engine import ClassifierPool
from edgecnn.serve.security import check_bind, read_token
from edgecnn.serve.source import LiveSource


# Open connections + tasks beyond which uvicorn answers 503: bounds what slow clients (slowloris, which
# uvicorn has no header-read timeout for) can hold, far above what a device serves at once.
MAX_CONNECTIONS = 128


@dataclasses.dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    token_file: str | None = None
    insecure: bool = False
    source: str | None = None
    drift_reference: str | None = None
    workers: int = 1
    threads: int | None = None
    drain_s: float = 10.0
    log_level: str = "warning"


def serve(model_path, options: ServeOptions, limits: Limits, *, warn, info) -> None:
    token = read_token(options.token_file, warn=warn) if options.token_file else None
    check_bind(options.host, token, options.insecure, warn=warn)
    pool = ClassifierPool(model_path, workers=options.workers, threads=options.threads)
    for message in pool.warnings:
        warn(message)
    app, state = build_app(pool, limits=limits, token=token)
    if options.drift_reference is not None:
        state.metrics.drift = DriftMonitor(reference_summary(pool, options.drift_reference, warn), pool.labels,
                                           warn=warn)
    live = None
    if options.source is not None:  # its own classifier: interpreters are not shared between threads
        live = state.source = LiveSource(options.source, pool.new_classifier(), state.metrics, warn=warn)
        live.start()
    config = uvicorn.Config(app, host=options.host, port=options.port, log_level=options.log_level,
                            timeout_graceful_shutdown=options.drain_s, server_header=False, lifespan="off",
                            limit_concurrency=MAX_CONNECTIONS)
    info(f"serving {pool.id} on http://{_url_host(options.host)}:{options.port} "
         f"({'token required' if token else 'no token'})")
    server = uvicorn.Server(config)
    state.stopping = lambda: server.should_exit  # ends open /v1/stream.mjpg viewers on SIGTERM
    try:
        with _sigterm_is_a_clean_stop():
            server.run()
    finally:
        if live is not None:
            live.stop()


@contextlib.contextmanager
def _sigterm_is_a_clean_stop():
    """uvicorn drains on SIGTERM and then re-raises it to the handler that was there before; with
    Python's default one that kills the process (exit -15) after a clean drain. A no-op handler
    underneath turns it into a normal return, so the process exits 0."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def reference_summary(pool, folder, warn):
    """The drift reference: the model's top-1 outputs on every image under ``folder`` (held-out data)."""
    images = find_images([folder])
    indices, scores = [], []
    for path in images:
        try:
            prediction = pool.classify(read_image(path), 1).prediction
        except DataError as exc:
            warn(f"drift reference: skipping {exc}")
            continue
        indices.append(pool.labels.index(prediction["label"]))
        scores.append(prediction["score"])
    if len(indices) < 50:
        raise DataError(f"--drift-reference {folder} has {len(indices)} readable images; give at least 50 "
                        "held-out images (the test split) so the reference distribution means something")
    return summarize(indices, scores, len(pool.labels))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
