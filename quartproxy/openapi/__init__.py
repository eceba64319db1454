"""The OpenAPI 3.1 description of every HTTP endpoint (served at /openapi.json and /docs).

The request bodies' schemas are the models that validate them (core.messages.REQUEST_MODELS,
one set of rules for every channel, the WebSocket too), so the two cannot drift; the models of
the answers are declared here (nothing validates an answer). Paths are written as data: a test
checks that every HTTP route of the app is described here (tests/integration/test_ops.py) and
that the document is valid OpenAPI 3.1 naming every request field (tests/unit/test_openapi.py).

quart-schema is not used (and not a dependency): its decorators validate the body themselves
and answer a failure with their own 400 shape, before the contract's size, media-type and JSON
checks run in their order (core.messages); it does not see WebSocket frames; and its document
pages load scripts from CDNs, which /docs does not (Content-Security-Policy: default-src 'none').

Split: models.py (the answer models, MODELS), paths.py (PATHS); `document()` assembles them.
"""

from __future__ import annotations

from typing import Any

from .models import MODELS
from .paths import PATHS

__all__ = ["MODELS", "PATHS", "document"]


def document(version: str = "0.1.0") -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "quartproxy",
            "version": version,
            "description": "A secure gateway between website chat widgets and n8n workflows. "
            'Errors are `{"error": {"code", "message"}}` with `retry_after` where it applies; '
            "every answer carries `X-Request-ID`.",
        },
        "paths": PATHS,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "session": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "An API client's key, qp_<id>_<secret> (docs/api-clients.md)",
                },
                "metrics": {"type": "http", "scheme": "bearer", "description": "METRICS_TOKEN"},
                "metricsBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "METRICS_TOKEN as the password, any user name (/status)",
                },
            },
            "parameters": {
                "Fingerprint": {
                    "name": "X-Chat-Fingerprint",
                    "in": "header",
                    "required": False,
                    "description": "Required when the session was created with a fingerprint",
                    "schema": {"type": "string", "maxLength": 128},
                }
            },
        },
    }
