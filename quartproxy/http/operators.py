"""Operator endpoints of API clients and signed visitors: the API keys with their last use,
and erasure by user id. Protected like /metrics (ops.operator_access)."""

from __future__ import annotations

import logging

from quart import Blueprint, Response, jsonify

from .. import visitors
from ..core import messages
from ..core.messages import InputLimits
from ..errors import ApiError
from .common import read_body, services
from .ops import operator_access
from .sessions import iso

log = logging.getLogger("quartproxy.ops")

bp = Blueprint("operators", __name__)


@bp.get("/ops/api-keys")
async def api_keys() -> Response:
    """Every configured key id with its last use (null: never used since it was listed)."""
    svc = services()
    operator_access(svc, required=True)
    ids = sorted(svc.api_keys.digests)
    used = await svc.store.api_key_uses(ids)
    listed = [{"id": kid, "last_used": iso(used[kid]) if kid in used else None} for kid in ids]
    return jsonify({"api_keys": listed})


@bp.post("/ops/erase-user")
async def erase_user() -> Response:
    """`{"user_id": "<sub>"}`: erase that signed user's conversation, history and answers on
    every device (a privacy request). `{"erased": false}` when nothing was kept for them."""
    svc = services()
    operator_access(svc, required=True)
    body = messages.parse_json_object(*(await read_body()), InputLimits.from_settings(svc.settings))
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id or len(user_id) > 256:
        raise ApiError(400, "bad_request", "Invalid field 'user_id': a string of 1 to 256.")
    erased = False
    for site in svc.registry.sites:  # a user's conversation is per site (Services.identity_for)
        erased = await visitors.end_conversation(svc, svc.identity_for(site), user_id) or erased
    log.info("erasure by user id: %s", "done" if erased else "nothing kept")
    return jsonify({"erased": erased})
