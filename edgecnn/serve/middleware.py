"""Two ASGI middlewares around every request: the bearer-token check and the request metrics.

Metrics sit outside the token check, so refused (401) requests are counted too. ``/healthz`` is
open without a token: it says only that the process is alive, and container health checks and
systemd watchdogs call it without credentials.
"""

from __future__ import annotations

import json
import time

from edgecnn.serve.security import token_matches

OPEN_PATHS = frozenset({"/healthz"})


async def send_json(send, status: int, body: dict, headers: dict | None = None) -> None:
    payload = json.dumps(body).encode("utf-8")
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw_headers += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": payload})


class TokenMiddleware:
    def __init__(self, app, token: str | None):
        self.app = app
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or self.token is None or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        if token_matches(header, self.token):
            return await self.app(scope, receive, send)
        await send_json(send, 401, {"error": "missing or wrong token; send 'Authorization: Bearer <token>'"},
                        {"www-authenticate": "Bearer"})


class MetricsMiddleware:
    def __init__(self, app, metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = {"code": 500}

        async def recording_send(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.observe_request(scope["path"], scope["method"], status["code"], time.perf_counter() - start)
