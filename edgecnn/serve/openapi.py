"""The OpenAPI 3.1 description served at /openapi.json, written out by hand (Starlette has no model
layer to generate it from, and a fixed document is easy to review against the routes)."""

from __future__ import annotations

_ERROR = {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_BINARY = {"type": "string", "format": "binary"}

_CLASSIFY = {
    "summary": "Classify one image (raw body) or several (multipart form, one file per part)",
    "parameters": [{"name": "top_k", "in": "query", "required": False,
                    "schema": {"type": "integer", "minimum": 1, "default": 1}}],
    "requestBody": {"required": True, "content": {
        "image/jpeg": {"schema": _BINARY},
        "image/png": {"schema": _BINARY},
        "multipart/form-data": {"schema": {"type": "object", "additionalProperties": _BINARY}},
    }},
    "responses": {
        "200": {"description": "Predictions, in the order the images were sent",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Classification"}}}},
        **{code: _ERROR for code in ("400", "401", "408", "413", "415", "503")},
    },
}

_SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Result": {"type": "object", "properties": {
        "name": {"type": "string"}, "label": {"type": ["string", "null"]}, "score": {"type": "number"},
        "top_k": {"type": "array", "items": {"type": "object", "properties": {
            "label": {"type": "string"}, "score": {"type": "number"}}}},
        "latency_ms": {"type": "number"}}},
    "Classification": {"type": "object", "properties": {
        "model": {"type": "string"}, "results": {"type": "array", "items": {"$ref": "#/components/schemas/Result"}},
        "latency_ms": {"type": "number", "description": "decode + inference of all images"}}},
}


def _get(summary: str, content_type: str = "application/json") -> dict:
    return {"get": {"summary": summary, "responses": {"200": {"description": "OK", "content": {content_type: {}}},
                                                      "401": _ERROR}}}


def openapi_document(version: str) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "edgecnn serve", "version": version},
        "components": {"schemas": _SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}, {}],
        "paths": {
            "/v1/classify": {"post": _CLASSIFY},
            "/v1/stream.mjpg": _get("The annotated --source as MJPEG (404 without --source)",
                                    "multipart/x-mixed-replace"),
            "/v1/model": _get("The model's id, labels, input and metadata"),
            "/healthz": _get("The process is alive (no token needed)"),
            "/readyz": _get("Model loaded (and the --source delivering frames, when one is attached); 503 if not"),
            "/metrics": _get("Prometheus text format", "text/plain"),
            "/openapi.json": _get("This document"),
        },
    }
