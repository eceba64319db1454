"""Sessions: create, validate, delete (contract: Sessions)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

from quart import Blueprint, Response, jsonify

from .. import guard
from ..core.tokens import fingerprint_hash, issue_session_token
from ..errors import ApiError
from ..store.base import SessionRecord, StoreUnavailable
from .common import authorize, caller, read_json, services

bp = Blueprint("sessions", __name__)
log = logging.getLogger("quartproxy.sessions")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _session_body(obj: object, max_metadata: int) -> tuple[str | None, dict[str, object]]:
    if not isinstance(obj, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    fingerprint = obj.get("fingerprint")
    if fingerprint is not None and (not isinstance(fingerprint, str) or len(fingerprint) > 128):
        raise ApiError(
            400, "bad_request", "`fingerprint` must be a string of at most 128 characters."
        )
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ApiError(400, "bad_request", "`metadata` must be a JSON object.")
    return fingerprint or None, metadata


@bp.post("/api/v1/session/create")
async def create() -> tuple[Response, int]:
    svc = services()
    who = caller()
    origin = guard.admit_origin(svc, who)
    await guard.limit(svc, [("session_create", who.ip, svc.settings.rate_limit_session_create)])
    fingerprint, metadata = _session_body(
        await read_json(optional=True), svc.settings.max_metadata_bytes
    )
    now = svc.clock()
    session_id = str(uuid.uuid4())
    fph = fingerprint_hash(fingerprint, svc.settings.jwt_secret_key)
    token, claims = issue_session_token(
        svc.settings.jwt_secret_key,
        session_id=session_id,
        origin=origin,
        fph=fph,
        now=now,
        ttl=svc.settings.session_ttl_seconds,
    )
    try:
        await svc.store.put_session(
            SessionRecord(session_id, origin, fph, now, claims.expires_at, metadata)
        )
    except StoreUnavailable:
        if svc.settings.rate_limit_fail_mode != "open":
            raise ApiError(
                503, "internal", "The session store is unavailable.", retry_after=5
            ) from None
        # fail open: the signed token works on its own until the store is back
        log.warning("session store unavailable: session %s not recorded", session_id)
    body = {"session_id": session_id, "token": token, "expires_at": iso(claims.expires_at)}
    return jsonify(body), 201


@bp.get("/api/v1/session/validate")
async def validate() -> Response:
    claims = await authorize(caller())
    return jsonify(
        {"valid": True, "session_id": claims.session_id, "expires_at": iso(claims.expires_at)}
    )


@bp.delete("/api/v1/session")
async def delete() -> tuple[str, int]:
    svc = services()
    claims = await authorize(caller())
    svc.turns.cancel_session(claims.session_id)
    await svc.store.delete_session(claims.session_id)
    return "", 204
