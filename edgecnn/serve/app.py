"""The Starlette application: routes, limits, and turning RequestRejected into a JSON 4xx/5xx.

Inference runs in worker threads (``anyio.to_thread``), each borrowing a classifier from the pool,
so the event loop keeps answering /healthz and /metrics while a model runs. At most
``max_concurrent`` classify requests are served at once; the next gets 503 with ``Retry-After``
instead of queueing without bound on a small device.
"""

from __future__ import annotations

import dataclasses
import time

from anyio import to_thread
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from edgecnn import __version__
from edgecnn.errors import RequestRejected
from edgecnn.serve.images import decode_upload
from edgecnn.serve.metrics import ServeMetrics
from edgecnn.serve.middleware import MetricsMiddleware, TokenMiddleware
from edgecnn.serve.openapi import openapi_document
from edgecnn.serve.stream import stream
from edgecnn.serve.uploads import read_body, uploads_of

ROUTES = ("/v1/classify", "/v1/model", "/v1/stream.mjpg", "/healthz", "/readyz", "/metrics", "/openapi.json")


@dataclasses.dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 16 * 1024 * 1024
    max_pixels: int = 4096 * 4096  # 16.8 MP: a 12 MP Pi camera still passes, a bomb does not
    max_images: int = 16
    max_concurrent: int = 4
    max_top_k: int = 100
    body_timeout_s: float = 30.0
    retry_after_s: int = 1


class ServeState:
    def __init__(self, pool, limits: Limits, source=None):
        self.pool = pool
        self.limits = limits
        self.source = source
        self.metrics = ServeMetrics(pool.labels, ROUTES)
        self.in_flight = 0
        self.stopping = lambda: False  # the server sets this to uvicorn's should_exit


def _error(exc: RequestRejected) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=exc.headers)


def _top_k(request, limits: Limits) -> int:
    text = request.query_params.get("top_k", "1")
    if not text.isdigit() or not 1 <= int(text) <= limits.max_top_k:
        raise RequestRejected(400, f"top_k must be a whole number from 1 to {limits.max_top_k}, got {text!r}")
    return int(text)


def _classify_one(state: ServeState, upload, top_k: int) -> dict:
    start = time.perf_counter()
    rgb = decode_upload(upload.data, max_pixels=state.limits.max_pixels, name=upload.name)
    done = state.pool.classify(rgb, top_k)
    state.metrics.inference.observe(done.seconds)
    return {"name": upload.name, **done.prediction, "latency_ms": round((time.perf_counter() - start) * 1e3, 3)}


def _classify_all(state: ServeState, uploads, top_k: int) -> list[dict]:
    """Every image is checked and decoded before any result counts, so a bad part fails the whole request."""
    results = [_classify_one(state, upload, top_k) for upload in uploads]
    for result in results:
        state.metrics.images.inc()
        state.metrics.observe_prediction(result["label"], result["score"], "request")
    return results


async def classify(request) -> Response:
    state: ServeState = request.app.state.serve
    limits = state.limits
    if state.in_flight >= limits.max_concurrent:
        return _error(RequestRejected(503, f"busy: {limits.max_concurrent} requests in progress; retry shortly",
                                      {"Retry-After": str(limits.retry_after_s)}))
    state.in_flight += 1
    state.metrics.in_flight.inc()
    try:
        start = time.perf_counter()
        top_k = _top_k(request, limits)
        body = await read_body(request, limits.max_body_bytes, limits.body_timeout_s)
        uploads = await uploads_of(request, body, limits.max_images)
        results = await to_thread.run_sync(_classify_all, state, uploads, top_k)
        return JSONResponse({"model": state.pool.id, "results": results,
                             "latency_ms": round((time.perf_counter() - start) * 1e3, 3)})
    except RequestRejected as exc:
        return _error(exc)
    finally:
        state.in_flight -= 1
        state.metrics.in_flight.dec()


async def model(request) -> Response:
    return JSONResponse(request.app.state.serve.pool.info)


async def healthz(request) -> Response:
    return JSONResponse({"status": "alive"})


async def readyz(request) -> Response:
    source = request.app.state.serve.source
    if source is not None and not source.delivering():
        return JSONResponse({"status": "not ready", "reason": f"source {source.text} is not delivering frames"},
                            status_code=503)
    return JSONResponse({"status": "ready", "source": source.text if source is not None else None})


async def metrics(request) -> Response:
    body, content_type = request.app.state.serve.metrics.exposition()
    return Response(body, media_type=content_type)


async def openapi(request) -> Response:
    return JSONResponse(openapi_document(__version__))


def build_app(pool, *, limits: Limits | None = None, token: str | None = None, source=None):
    """The ASGI app: token check inside the metrics middleware, so refused requests are counted."""
    state = ServeState(pool, limits or Limits(), source)
    routes = [Route("/v1/classify", classify, methods=["POST"]), Route("/v1/model", model),
              Route("/v1/stream.mjpg", stream),
              Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics),
              Route("/openapi.json", openapi)]
    app = Starlette(routes=routes)
    app.state.serve = state
    return MetricsMiddleware(TokenMiddleware(app, token), state.metrics), state
