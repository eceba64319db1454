"""Sessions: create, validate, delete (contract: Sessions)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from quart import Blueprint, Response, jsonify

from .. import guard, visitors
from ..core import messages
from ..core.identity import VerifiedUser, verify_user_token
from ..core.messages import InputLimits
from ..core.tokens import fingerprint_hash, issue_session_token
from ..store.base import SessionRecord, StoreUnavailable
from .common import admit_read, caller, read_body, services

bp = Blueprint("sessions", __name__)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@bp.post("/api/v1/session/create")
async def create() -> tuple[Response, int]:
    svc = services()
    who = caller()
    site, origin = await guard.admit_session_create(svc, who)
    given = messages.parse_session_body(
        *(await read_body()), InputLimits.from_settings(svc.settings)
    )
    fingerprint, metadata = given.fingerprint, given.metadata
    now = svc.clock()
    user: VerifiedUser | None = None
    if given.user_token is not None:  # a signed visitor: checked before anything is kept
        user = verify_user_token(svc.identity_for(site), given.user_token, now=now)
    fph = fingerprint_hash(fingerprint, svc.settings.jwt_secret_key)
    session_id = str(uuid.uuid4())
    try:
        if user is not None:
            session_id = await visitors.conversation_of(
                svc, svc.identity_for(site), user, origin, now
            )
        token, claims = issue_session_token(
            svc.settings.jwt_secret_key,
            session_id=session_id,
            origin=origin,
            fph=fph,
            now=now,
            ttl=svc.settings.session_ttl_seconds,
            user=user.claims() if user is not None else None,
            site=site.id,
        )
        await svc.store.put_session(
            SessionRecord(session_id, origin, fph, now, claims.expires_at, metadata)
        )
    except StoreUnavailable:
        if user is not None:  # without the store, the user's conversation cannot be found
            raise guard.refuse_store_down("session create") from None
        if svc.settings.rate_limit_fail_mode != "open":
            raise guard.refuse_store_down("session create") from None
        # fail open: the signed token works on its own until the store is back
        guard.fail_open("session create", "issued a token without recording the session")
    body = {"session_id": session_id, "token": token, "expires_at": iso(claims.expires_at)}
    return jsonify(body), 201


@bp.get("/api/v1/session/validate")
async def validate() -> Response:
    claims = (await admit_read(caller())).claims
    return jsonify(
        {"valid": True, "session_id": claims.session_id, "expires_at": iso(claims.expires_at)}
    )


@bp.delete("/api/v1/session")
async def delete() -> tuple[str, int]:
    svc = services()
    admitted = await admit_read(caller())
    claims = admitted.claims
    svc.turns.cancel_session(claims.session_id)
    await svc.store.delete_session(claims.session_id)
    if claims.user is not None:  # the user's shared conversation ends on every device
        await visitors.end_conversation(svc, svc.identity_for(admitted.site), claims.user["sub"])
    return "", 204
