"""Glue between Quart's request objects and the transport-free checks in guard.py."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any, cast

from quart import current_app, g, request

from .. import guard
from ..core.tokens import SessionClaims
from ..errors import ApiError
from ..guard import Caller, make_caller
from ..services import Services

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def services() -> Services:
    return cast(Services, current_app.extensions["quartproxy"])


def request_id() -> str:
    rid = g.get("request_id")
    if rid is None:
        incoming = request.headers.get("X-Request-ID", "")
        rid = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_id = rid
    return cast(str, rid)


def caller() -> Caller:
    return make_caller(
        services(),
        request.headers,
        request.remote_addr,
        request.headers.getlist("X-Forwarded-For"),
    )


async def read_json(*, optional: bool = False) -> Any:
    """The JSON body: 415 for another content type, 400 when malformed, 413 when too large
    (Quart enforces MAX_CONTENT_LENGTH while reading)."""
    data = await request.get_data(cache=False)
    if not data and optional:
        return {}
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_request", "The body is not valid JSON.") from None


async def authorize(who: Caller) -> SessionClaims:
    """The request's session: bearer token plus `X-Chat-Fingerprint`, checked by guard."""
    return await guard.authenticate(
        services(),
        who,
        guard.bearer_token(request.headers),
        request.headers.get("X-Chat-Fingerprint"),
    )
