"""The paths of /openapi.json, written as data (tests/integration/test_ops.py checks that every
HTTP route of the app is described here)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..core.messages import ChatMessage, N8nChatRequest, SessionCreate
from .models import (
    ErrorBody,
    Health,
    History,
    SessionCreated,
    SessionValid,
    WidgetDefaults,
)

SSE_EXAMPLE = (
    'id: <message_id>:0\nevent: start\ndata: {"message_id": "...", "session_id": "..."}\n\n'
    'id: <message_id>:1\nevent: delta\ndata: {"text": "Hel"}\n\n'
    'id: <message_id>:2\nevent: end\ndata: {"message_id": "...", "text": "Hello"}\n\n'
)


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _errors(*statuses: int) -> dict[str, Any]:
    meaning = {
        400: "bad_request",
        401: "unauthorized / session_mismatch",
        403: "origin_not_allowed / forbidden / blocked",
        404: "not_found",
        409: "busy: an answer is still in progress for this session",
        413: "payload_too_large",
        415: "unsupported_media_type",
        429: "rate_limited (Retry-After header; X-RateLimit-Tier names the tier)",
        503: "shutting_down (the server drains) or a store outage",
    }
    return {str(s): _json(ErrorBody, meaning[s]) for s in statuses}


# A browser: the session token. An API client: the token and its key (docs/api-clients.md).
BEARER: list[dict[str, list[str]]] = [{"session": []}, {"session": [], "apiKey": []}]
CHAT_ERRORS = _errors(400, 401, 403, 409, 413, 415, 429, 503)


def _files(required: list[str], optional: list[str]) -> dict[str, Any]:
    """A message with files (ATTACH_ENABLED, docs/attachments.md): the JSON fields as text
    parts (`metadata` a JSON string), one part per file."""
    text = {name: {"type": "string"} for name in required + optional}
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    return {
        "schema": {
            "type": "object",
            "required": required,
            "properties": {**text, "files": files},
        }
    }


def _turn(summary: str, media: str, description: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "description": description,
        "tags": ["chat"],
        "security": BEARER,
        "parameters": [{"$ref": "#/components/parameters/Fingerprint"}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _ref(ChatMessage)},
                "multipart/form-data": _files(["message"], ["metadata", "honeypot"]),
            },
        },
        "responses": {
            "200": {
                "description": "The answer as it is produced",
                "content": {media: {"schema": {"type": "string"}}},
            },
            **CHAT_ERRORS,
        },
    }


PATHS: dict[str, dict[str, Any]] = {
    "/api/v1/session/create": {
        "post": {
            "summary": "Create a chat session",
            "description": "Needs an allowed `Origin`, or (an API client) a valid `X-Api-Key` "
            "and no `Origin`. Returns a token bound to the session, the origin (or key) and a "
            "hash of the fingerprint. With `user_token`: a signed visitor (docs/identity.md).",
            "tags": ["sessions"],
            "security": [{}, {"apiKey": []}],
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref(SessionCreate)}},
            },
            "responses": {
                "201": _json(SessionCreated, "The new session"),
                **_errors(400, 401, 403, 413, 415, 429),
            },
        }
    },
    "/api/v1/session/validate": {
        "get": {
            "summary": "Check a session token",
            "tags": ["sessions"],
            "security": BEARER,
            "parameters": [{"$ref": "#/components/parameters/Fingerprint"}],
            "responses": {"200": _json(SessionValid, "The token is valid"), **_errors(401)},
        }
    },
    "/api/v1/session": {
        "delete": {
            "summary": "End a session",
            "description": "Erases the session, its history and its buffers; its token stops "
            "working.",
            "tags": ["sessions"],
            "security": BEARER,
            "parameters": [{"$ref": "#/components/parameters/Fingerprint"}],
            "responses": {"204": {"description": "Deleted"}, **_errors(401)},
        }
    },
    "/api/v1/sites/{site_id}/widget": {
        "get": {
            "summary": "A site's widget defaults",
            "description": "The title, greeting, language, theme and accent of the site's "
            "widget (only those the sites file sets). The Origin must be one of that site's.",
            "tags": ["sessions"],
            "parameters": [_path_param("site_id")],
            "responses": {"200": _json(WidgetDefaults, "The defaults"), **_errors(403, 429)},
        }
    },
    "/api/v1/chat/message": {
        "post": _turn(
            "Send a message; the answer as Server-Sent Events",
            "text/event-stream",
            "Events `start`, `delta`*, then `end` or `error` (`error` codes include "
            "`upstream_unavailable`, `upstream_timeout`, `upstream_error`, `shutting_down`). "
            "Each event has an id `<message_id>:<n>` for resuming. `: ping` comments at least "
            "every 15 s.\n\n```\n" + SSE_EXAMPLE + "```",
        )
    },
    "/api/v1/chat/stream": {
        "post": _turn(
            "Send a message; the answer as NDJSON in n8n's chunk format",
            "application/x-ndjson",
            'One JSON object per line: `{"type": "begin"|"item"|"end"|"error", '
            '"content"?: "...", "metadata": {...}}`.',
        )
    },
    "/api/v1/chat/message/{message_id}": {
        "get": {
            "summary": "Resume an answer",
            "description": "Replays the events after `Last-Event-ID: <message_id>:<k>` and "
            "continues live until `end`/`error`.",
            "tags": ["chat"],
            "security": BEARER,
            "parameters": [
                _path_param("message_id"),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                },
                {"$ref": "#/components/parameters/Fingerprint"},
            ],
            "responses": {
                "200": {
                    "description": "The remaining events",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(400, 401, 403, 404),
            },
        }
    },
    "/api/v1/chat/history/{session_id}": {
        "get": {
            "summary": "A session's messages, oldest first",
            "tags": ["chat"],
            "security": BEARER,
            "parameters": [
                _path_param("session_id"),
                {"$ref": "#/components/parameters/Fingerprint"},
            ],
            "responses": {"200": _json(History, "The history"), **_errors(401, 403, 429)},
        }
    },
    "/api/v1/n8n/chat": {
        "post": {
            "summary": "Drop-in endpoint for the official @n8n/chat widget",
            "description": "Set the widget's `webhookUrl` to this path. `sendMessage` answers "
            '`{"output": ...}`, or NDJSON chunks with `Accept: text/plain`; '
            '`loadPreviousSession` answers `{"data": [...]}`. No token; origin allowlist, '
            "limits, bot and spam checks apply. The WebSocket channel `WS /api/v1/chat/ws` is "
            "described in docs/api.md (OpenAPI has no WebSocket operations).",
            "tags": ["compat"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _ref(N8nChatRequest)},
                    "multipart/form-data": _files(
                        ["action", "sessionId", "chatInput"], ["metadata"]
                    ),
                },
            },
            "responses": {
                "200": {
                    "description": "The answer, or the history",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
                **_errors(400, 403, 413, 415, 429, 503),
            },
        }
    },
    "/health": {
        "get": {
            "summary": "Health of the proxy and what it depends on",
            "description": "200 when n8n and the store answer; 503 `degraded` naming the "
            "failing check, or 503 `shutting_down` while the process drains. Cheap enough to "
            "poll every second (the n8n probe is cached). Each check's `status` for everyone; "
            "its detail (backend, latency, why it fails) only for operators: the METRICS_TOKEN "
            "bearer when set, else callers on this host or in TRUSTED_PROXIES.",
            "tags": ["operations"],
            "responses": {
                "200": _json(Health, "Healthy"),
                "503": _json(Health, "Degraded or shutting down"),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics, summed over all workers",
            "description": "With METRICS_TOKEN set: for its bearer only (401 otherwise). "
            "Without it: for callers on this host or in TRUSTED_PROXIES only (403 otherwise), "
            "the client address resolved as for the rate limits.",
            "tags": ["operations"],
            "security": [{"metrics": []}, {}],
            "responses": {
                "200": {
                    "description": "Prometheus text exposition format 0.0.4",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(401, 403),
            },
        }
    },
    "/ops/api-keys": {
        "get": {
            "summary": "The API keys (ids only) and the last use of each",
            "description": "Same access as /metrics. docs/api-clients.md",
            "tags": ["operations"],
            "security": [{"metrics": []}, {}],
            "responses": {
                "200": {
                    "description": '`{"api_keys": [{"id": "...", "last_used": "<ISO>"|null}]}`',
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(401, 403),
            },
        }
    },
    "/ops/erase-user": {
        "post": {
            "summary": "Erase a signed visitor's conversation by user id (privacy requests)",
            "description": 'Same access as /metrics. Body `{"user_id": "<sub>"}`; answers '
            '`{"erased": true|false}`. docs/identity.md',
            "tags": ["operations"],
            "security": [{"metrics": []}, {}],
            "responses": {
                "200": {
                    "description": '`{"erased": true}`, or false when nothing was kept',
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(400, 401, 403),
            },
        }
    },
    "/status": {
        "get": {
            "summary": "Live status page of this instance (HTML, refreshes itself)",
            "description": "Same access as /metrics; with METRICS_TOKEN, the token is also "
            "accepted as the password of HTTP Basic auth (a 401 then asks the browser for it).",
            "tags": ["operations"],
            "security": [{"metrics": []}, {"metricsBasic": []}, {}],
            "responses": {"200": {"description": "HTML"}, **_errors(401)},
        }
    },
    "/status/data": {
        "get": {
            "summary": "The figures and last-minutes series the status page shows",
            "tags": ["operations"],
            "security": [{"metrics": []}, {"metricsBasic": []}, {}],
            "responses": {
                "200": {
                    "description": "`now` (current figures), `series` (one list per chart), "
                    "`t` (seconds before now of each series point), `uptime`",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(401),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "tags": ["operations"],
            "responses": {"200": {"description": "OpenAPI 3.1 JSON"}},
        }
    },
    "/docs": {
        "get": {
            "summary": "This document as a page (no scripts)",
            "tags": ["operations"],
            "responses": {"200": {"description": "HTML"}},
        }
    },
    "/": {
        "get": {
            "summary": "Service name (the demo page in demo mode)",
            "tags": ["operations"],
            "responses": {"200": {"description": "JSON, or HTML in demo mode"}},
        }
    },
    "/static/widget.js": {
        "get": {
            "summary": "The widget for existing embeds: gzip/br by Accept-Encoding, 5-minute cache",
            "tags": ["widget"],
            "responses": {"200": {"description": "JavaScript"}, "304": {"description": "ETag"}},
        }
    },
    "/static/widget.{digest}.js": {
        "get": {
            "summary": "The widget by content hash: immutable, cached for a year (see widget.json)",
            "tags": ["widget"],
            "parameters": [_path_param("digest")],
            "responses": {
                "200": {"description": "JavaScript"},
                "304": {"description": "ETag"},
                **_errors(404),
            },
        }
    },
    "/static/widget.json": {
        "get": {
            "summary": "The current widget: `url` (versioned), `integrity` (SRI), `encodings`",
            "tags": ["widget"],
            "responses": {"200": {"description": "JSON"}},
        }
    },
    "/static/{filename}": {
        "get": {
            "summary": "Static files: the embeddable widget `widget.js`",
            "tags": ["widget"],
            "parameters": [_path_param("filename")],
            "responses": {"200": {"description": "The file"}, **_errors(404)},
        }
    },
}
