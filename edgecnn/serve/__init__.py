"""``edgecnn serve``: the device half behind an HTTP API (TF-free, installed with ``edgecnn[serve]``).

Stack, and why:
- **Starlette** (routing, requests, multipart through python-multipart) rather than FastAPI:
  FastAPI is Starlette plus pydantic, and pydantic-core is a compiled Rust extension that adds
  ~5 MB and import time on a Pi for request models this API does not need (its bodies are raw
  image bytes). Starlette is pure Python, maintained by the encode team (as is uvicorn), and
  FastAPI users will recognise every piece. The OpenAPI document is written out in ``openapi.py``.
- **uvicorn** without the ``[standard]`` extras (h11, pure Python; no uvloop/httptools to build on
  ARM): graceful SIGTERM drain, keep-alive timeouts, one process.
- **prometheus-client**: the reference client; its text format is what every scraper reads.

Modules: ``images`` (format sniffing, pixel cap from the header, decode), ``uploads`` (body limits,
multipart), ``engine`` (the classifier pool), ``metrics``, ``security`` (bind rule, token),
``middleware``, ``app`` (routes), ``source`` (optional live loop), ``server`` (uvicorn).
"""
