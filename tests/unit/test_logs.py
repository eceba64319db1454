"""Log formatting: JSON fields, request ids, Hypercorn access atoms."""

from __future__ import annotations

import json
import logging

import trio

from quartproxy.logs import (
    ACCESS_LOGGER,
    JsonFormatter,
    RequestIdFilter,
    TextFormatter,
    bind_request_id,
)


def record(name: str, msg: str, args: object = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)  # type: ignore[arg-type]
    for key, val in extra.items():
        setattr(rec, key, val)
    RequestIdFilter().filter(rec)
    return rec


def test_json_line_has_request_id_and_extra_fields() -> None:
    bind_request_id("rid-12345678")
    try:
        line = json.loads(JsonFormatter().format(record("quartproxy.x", "hi %s", ("you",), n=3)))
    finally:
        bind_request_id(None)
    assert line["msg"] == "hi you"
    assert line["request_id"] == "rid-12345678"
    assert line["n"] == 3
    assert line["level"] == "INFO" and line["ts"].endswith("Z")


def test_json_line_without_request_id_has_none() -> None:
    line = json.loads(JsonFormatter().format(record("quartproxy.x", "plain")))
    assert "request_id" not in line


def test_access_atoms_become_fields() -> None:
    atoms = {
        "h": "127.0.0.1:5000",
        "m": "POST",
        "U": "/api/v1/chat/message",
        "q": "",
        "H": "1.1",
        "s": "200",
        "b": "-",
        "D": 1234,
        "a": "curl/8",
        "{x-request-id}o": "abcdef0123456789",
    }
    rec = record(ACCESS_LOGGER, '%(h)s "%(r)s"', None)
    rec.args = atoms  # as Hypercorn passes them (a mapping)
    line = json.loads(JsonFormatter().format(rec))
    assert line["msg"] == "access"
    assert line["status"] == 200
    assert line["path"] == "/api/v1/chat/message"
    assert line["request_id"] == "abcdef0123456789"
    assert line["duration_us"] == 1234
    assert "bytes" not in line and "query" not in line  # "-" and "" are left out


def test_text_line_shows_request_id() -> None:
    bind_request_id("rid-abcdefgh")
    try:
        text = TextFormatter().format(record("quartproxy.x", "hello"))
    finally:
        bind_request_id(None)
    assert "[rid-abcdefgh]" in text and text.endswith("hello")
    assert "[" not in TextFormatter().format(record("quartproxy.x", "hello")).split("INFO")[1]


async def test_request_id_follows_into_tasks_started_from_the_request() -> None:
    seen: list[str | None] = []

    async def child() -> None:
        seen.append(record("quartproxy.x", "in child").request_id)  # type: ignore[attr-defined]

    async def request_task(rid: str) -> None:
        bind_request_id(rid)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(child)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(request_task, "rid-one-11111")
        nursery.start_soon(request_task, "rid-two-22222")
    assert sorted(seen) == ["rid-one-11111", "rid-two-22222"]  # type: ignore[type-var]


def _scope() -> dict[str, object]:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/chat/message",
        "query_string": b"a=1",
        "client": ("10.1.2.3", 5555),
        "headers": [
            (b"user-agent", b"Mozilla/5.0 test"),
            (b"x-forwarded-for", b"203.0.113.9"),
            (b"X-Request-ID", b"abc-12345678"),
        ],
    }


def test_cheap_access_atoms_equal_hypercorn_ones_for_every_atom_we_log() -> None:
    """The lean atoms must say exactly what Hypercorn's would, for the shipped format and the
    JSON fields (Hypercorn's copy every header and os.environ; ours only what is used)."""
    from hypercorn.config import Config
    from hypercorn.logging import AccessLogAtoms

    from quartproxy.logs import _ACCESS_FIELDS, AccessLogger

    config = Config.from_toml("hypercorn.toml")
    response = {
        "status": 200,
        "headers": [(b"content-length", b"42"), (b"x-request-id", b"abc-12345678")],
    }
    ours = AccessLogger(config).atoms(_scope(), response, 0.0123)  # type: ignore[arg-type]
    theirs = AccessLogAtoms(_scope(), response, 0.0123)  # type: ignore[arg-type]
    import re

    used = set(re.findall(r"%\(([^)]+)\)", config.access_log_format)) | set(_ACCESS_FIELDS)
    for atom in used:
        assert ours[atom] == theirs[atom], atom
    assert ours["{x-missing}i"] == theirs["{x-missing}i"] == "-"
    line = config.access_log_format % ours
    assert "abc-12345678" in line and '"POST /api/v1/chat/message 1.1"' in line


def test_an_unusual_access_format_falls_back_to_hypercorns_atoms() -> None:
    from hypercorn.config import Config

    from quartproxy.logs import AccessLogger

    config = Config()
    config.access_log_format = "%(t)s %(p)s %({host}e)s"
    atoms = AccessLogger(config).atoms(_scope(), None, 0.5)  # type: ignore[arg-type]
    assert atoms["p"] == f"<{__import__('os').getpid()}>"


async def _access_lines(calls: list[dict[str, object] | None], *, app_running: bool) -> list[str]:
    """Feed AccessLogger the calls Hypercorn makes for one request (None: the connection closed
    before the response ended), the way http/keepalive.py brackets the app's run."""
    import logging

    from hypercorn.config import Config

    from quartproxy.logs import ACCESS_PENDING, AccessLogger, flush_pending_access

    config = Config()
    config.access_log_format = "%(U)s %(s)s"
    target = logging.getLogger("test.access.once")
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    target.handlers[:] = [Keep()]
    target.setLevel(logging.INFO)
    target.propagate = False
    config.accesslog = target
    logger = AccessLogger(config)
    scope = _scope()
    if app_running:
        scope[ACCESS_PENDING] = None
    for response in calls:
        await logger.access(scope, response, 0.01)
    if app_running:
        flush_pending_access(scope)
    return lines


async def test_an_early_close_then_the_real_response_is_one_line_with_the_status() -> None:
    ok = {"status": 200, "headers": []}
    assert await _access_lines([None, ok], app_running=True) == ["/api/v1/chat/message 200"]


async def test_a_client_gone_before_the_end_is_one_line_without_a_status() -> None:
    assert await _access_lines([None], app_running=True) == ["/api/v1/chat/message -"]


async def test_lines_after_the_app_ended_and_without_the_wrapper_are_written_at_once() -> None:
    ok = {"status": 500, "headers": []}
    assert await _access_lines([ok], app_running=True) == ["/api/v1/chat/message 500"]
    assert await _access_lines([None, ok], app_running=False) == [
        "/api/v1/chat/message -",
        "/api/v1/chat/message 500",
    ]
