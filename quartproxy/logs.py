"""Logging: one JSON object per line in production, readable lines in development.

Every line carries the id of the request it belongs to (`request_id`), taken from a contextvar
that the app sets at the start of each request. Trio copies the context into tasks started from
a request, so the log lines of an answer's upstream call carry it too. The same id is sent to
n8n as `X-Request-ID` and returned to the client in the `X-Request-ID` response header.

The access log comes from Hypercorn: `python -m quartproxy` hands Hypercorn the
`quartproxy.access` logger, so access lines get the same format (and, in JSON, fields).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from hypercorn.logging import Logger as HypercornLogger

from .config import Settings

REQUEST_ID: ContextVar[str | None] = ContextVar("quartproxy_request_id", default=None)
# The site of the request (core/sites.py), on its log lines; unset on a single-site gateway
SITE: ContextVar[str | None] = ContextVar("quartproxy_site", default=None)
ACCESS_LOGGER = "quartproxy.access"
SERVER_LOGGER = "quartproxy.server"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged.
_STANDARD = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "request_id", "taskName"}

# Hypercorn access-log atoms -> JSON field names.
_ACCESS_FIELDS = {
    "h": "remote",
    "m": "method",
    "U": "path",
    "q": "query",
    "H": "protocol",
    "s": "status",
    "b": "bytes",
    "D": "duration_us",
    "a": "user_agent",
    "{x-request-id}o": "request_id",
    "{x-forwarded-for}i": "forwarded_for",
}


def bind_request_id(request_id: str | None) -> None:
    """Attach `request_id` to every log line of the current task (and tasks it starts)."""
    REQUEST_ID.set(request_id)


def bind_site(site_id: str | None) -> None:
    """Attach the request's site id to its log lines (`site` in JSON, `site=` in text)."""
    SITE.set(site_id)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        site = SITE.get()
        if site is not None and not hasattr(record, "site"):
            record.site = site
        return True


def _timestamp(record: logging.LogRecord) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
        }
        if record.name == ACCESS_LOGGER and isinstance(record.args, Mapping):
            atoms = record.args
            out["msg"] = "access"
            for atom, name in _ACCESS_FIELDS.items():
                value = atoms.get(atom, "-") if atom.startswith("{") else atoms.get(atom)
                if value not in (None, "-", ""):
                    out[name] = _number(value) if name in ("status", "bytes") else value
        else:
            out["msg"] = record.getMessage()
            rid = getattr(record, "request_id", None)
            if rid:
                out["request_id"] = rid
            for key, value in vars(record).items():
                if key not in _STANDARD and key not in out:
                    out[key] = value if _jsonable(value) else repr(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        site = getattr(record, "site", None)
        record.rid = (f" [{rid}]" if rid else "") + (f" site={site}" if site else "")
        return super().format(record)


def _number(value: Any) -> Any:
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def setup_logging(settings: Settings) -> None:
    """Install the handler on the `quartproxy` logger tree (app, access log, server)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger("quartproxy")
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    root.propagate = False
    # Access lines are INFO: keep them even when LOG_LEVEL is WARNING or ERROR.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)


_ATOM = re.compile(r"%\(([^)]+)\)")
_CHEAP_ATOMS = frozenset({"h", "m", "U", "q", "H", "s", "b", "D", "a", "r", "T", "L", "S"})


class _Atoms(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "-"


# The scope key under which a request's "closed before the response ended" access line waits
# (see AccessLogger.access); present (None) while the app runs the request.
ACCESS_PENDING = "quartproxy.access_pending"


class AccessLogger(HypercornLogger):
    """Hypercorn's logger with cheap access-log atoms, and one line per request.

    Cheap atoms: Hypercorn's own `AccessLogAtoms` copies every request header, every response
    header and the whole of `os.environ` into a dict on every request (measured: ~3 % of a
    worker's CPU on the bench); this builds only the atoms the format and the JSON fields use,
    and falls back to Hypercorn's for any other format.

    One line: Hypercorn 0.18 (hypercorn/protocol/http_stream.py) writes an access line with no
    response (status `-`, rid=-) when the connection closes before the app's final body message, and
    then a second one, with the real status, when that message comes. A client that has read
    a whole Content-Length body closes at once (curl, `Connection: close`), and the close can
    win that race: two lines for one request. While the app runs the request (the scope holds
    ACCESS_PENDING, set by http/keepalive.py), such a line waits in the scope instead; the
    real line replaces it, or, if the app ends without finishing the response (a client that
    left mid-stream), `flush_pending_access` writes it then. Upstream report:
    docs/upstream/hypercorn-double-access-log.md."""

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        used = set(_ATOM.findall(self.access_log_format or "")) | set(_ACCESS_FIELDS)
        self._cheap = all(a in _CHEAP_ATOMS or a[:1] == "{" for a in used)
        self._request_headers = {a[1:-2].lower() for a in used if a.endswith("}i")}
        self._response_headers = {a[1:-2].lower() for a in used if a.endswith("}o")}

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        if self.access_logger is None:
            return
        if ACCESS_PENDING in request:
            if response is None:  # may be followed by the real line: wait (see above)
                atoms = self.atoms(request, None, request_time)
                request[ACCESS_PENDING] = (self.access_logger, self.access_log_format, atoms)
                return
            request[ACCESS_PENDING] = None
        self.access_logger.info(self.access_log_format, self.atoms(request, response, request_time))

    def atoms(self, request: Any, response: Any, request_time: float) -> Mapping[str, Any]:
        if not self._cheap:
            return super().atoms(request, response, request_time)
        out = _Atoms()
        for name, value in request["headers"]:
            key = name.decode("latin1").lower()
            if key in self._request_headers:
                out[f"{{{key}}}i"] = value.decode("latin1")
            if key == "user-agent":
                out["a"] = value.decode("latin1")
        if response is not None:
            out["s"] = str(response["status"])
            for name, value in response.get("headers", ()):
                key = name.decode("latin1").lower()
                if key in self._response_headers:
                    out[f"{{{key}}}o"] = value.decode("latin1")
                if key == "content-length":
                    out["b"] = value.decode("latin1")
        client = request.get("client")
        method = request["method"] if request["type"] == "http" else "GET"
        protocol = request.get("http_version", "ws")
        out["h"] = f"{client[0]}:{client[1]}" if client and len(client) == 2 else "-"
        out["m"] = method
        out["U"] = request["path"]
        out["q"] = request["query_string"].decode()
        out["H"] = protocol
        out["S"] = request["scheme"]
        out["r"] = f"{method} {request['path']} {protocol}"
        out["T"] = int(request_time)
        out["D"] = int(request_time * 1_000_000)
        out["L"] = f"{request_time:.6f}"
        return out


def flush_pending_access(scope: dict[str, Any]) -> None:
    """At the end of the app's run of a request: write the access line that waited for a final
    response that never came (AccessLogger.access), and stop deferring."""
    pending = scope.pop(ACCESS_PENDING, None)
    if pending is not None:
        logger, fmt, atoms = pending
        logger.info(fmt, atoms)


class Every:
    """Lets a repeated line through at most once per `seconds` for each key: an outage under
    load is told in the log once per interval, not once per request (metrics count them all)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def due(self, key: str) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.seconds:
            return False
        self._last[key] = now
        return True

    def reset(self) -> None:
        self._last.clear()
