"""How an n8n answer becomes the contract's events, outside the client's IO: the upstream
errors, the refusal of an answer that never started, the body's bytes, the parser's tail, and
the words logged for a failure (never the webhook path, which is the secret part of its URL)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, Awaitable, Callable

import httpx
import trio

from .. import metrics
from ..core.events import Error, TurnEvent
from ..core.n8n_parse import N8nAnswerParser
from ..overrides.httpx_stream import take_raw_stream

log = logging.getLogger("quartproxy.upstream")

UNAVAILABLE = Error("upstream_unavailable", "The assistant is unavailable right now.")
TIMEOUT = Error("upstream_timeout", "The assistant took too long to answer.")
REJECTED = Error("upstream_error", "The assistant could not answer this message.")
CUT = Error("upstream_error", "The assistant's answer was cut off before it finished.")

# Receives the events of one upstream read (never an empty list).
Emit = Callable[[list[TurnEvent]], Awaitable[None]]


def refusal(response: httpx.Response | None, timeout: float) -> Error | None:
    """The error for an answer that never started (no head in time, not HTTP 200), logged
    and counted; None for a 200."""
    if response is None:
        log.warning("n8n sent no answer within %ss", timeout)
        metrics.n8n_error("timeout")
        return TIMEOUT
    if response.status_code != 200:
        log.warning("n8n answered HTTP %s (%s)", response.status_code, why(response))
        metrics.n8n_error(metrics.n8n_status_kind(response.status_code))
        return REJECTED
    return None


def body(response: httpx.Response) -> AsyncIterable[bytes]:
    """The body's bytes: the transport's stream itself when n8n sends them as they are (we ask
    for identity), not aiter_raw(): one async generator fewer per chunk and per open answer
    (overrides/httpx_stream.py); decoded bytes when a server in front of n8n compresses
    regardless of Accept-Encoding, or when the body was already read (aiter_bytes replays it).
    N8nClient.stream_answer's finally closes the stream."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    raw = take_raw_stream(response) if encoding in ("", "identity") else None
    return raw if raw is not None else response.aiter_bytes()


async def tail(parser: N8nAnswerParser, emit: Emit) -> None:
    """What the parser still holds when the body ended (a last line without newline, or the
    error of an answer cut off before its end)."""
    tail = parser.close()
    if tail and isinstance(tail[-1], Error):
        metrics.n8n_parse_error(tail[-1].message)
    if parser.garbage_lines:
        log.info("n8n stream had %d unreadable lines (skipped)", parser.garbage_lines)
    if tail:
        await emit(tail)


def why(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return "n8n refused the proxy's JWT: check the JWT Auth credential = SESSION_SECRET_KEY"
    if response.status_code == 404:
        return "webhook not found: is the workflow active and N8N_WEBHOOK_URL right?"
    return "workflow error"


def describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, trio.TooSlowError | httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__
