"""Glue between Quart's request objects and the transport-free checks in guard.py."""

from __future__ import annotations

import os
import re
from typing import cast

from quart import current_app, request

from .. import guard, logs
from ..guard import Caller, make_caller
from ..services import Services

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def services() -> Services:
    return cast(Services, current_app.extensions["quartproxy"])


def bind_request_id() -> str:
    """Decide this request's id and bind it to the request's task (a before_request hook, so
    it runs first on every HTTP request; the task is the request's own, see logs)."""
    rid = incoming_request_id(request.headers)
    logs.bind_request_id(rid)
    return rid


def request_id() -> str:
    return logs.REQUEST_ID.get() or bind_request_id()


def incoming_request_id(headers: guard.Headers) -> str:
    """The client's X-Request-ID when it is sane, else a fresh one."""
    incoming = headers.get("X-Request-ID") or ""
    return incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def caller() -> Caller:
    return make_caller(
        services(),
        request.headers,
        request.remote_addr,
        request.headers.getlist("X-Forwarded-For"),
    )


async def read_body() -> tuple[bytes, str | None]:
    """The raw body and its Content-Type. Quart enforces MAX_CONTENT_LENGTH while reading
    (413, also for chunked bodies) and BODY_TIMEOUT (408) against slow senders; what the bytes
    must be is decided by guard / core.messages."""
    data = await request.get_data(cache=False, as_text=False)
    assert isinstance(data, bytes)
    return data, request.headers.get("Content-Type")


def credentials() -> tuple[str, str | None]:
    """The bearer token (401 when absent) and the `X-Chat-Fingerprint` it must match."""
    return guard.bearer_token(request.headers), request.headers.get("X-Chat-Fingerprint")


async def admit_chat(who: Caller) -> guard.Admitted:
    return await guard.admit_chat(services(), who, *credentials())


async def admit_read(who: Caller) -> guard.Admitted:
    return await guard.admit_read(services(), who, *credentials())
