"""Operations endpoints: health, metrics, and the demo page."""

from __future__ import annotations

import hmac
from typing import Any

import trio
from quart import Blueprint, Response, current_app, jsonify, request, send_from_directory

from .. import metrics
from ..errors import ApiError
from ..services import Services
from ..store.base import StoreUnavailable
from .common import services

bp = Blueprint("ops", __name__)


@bp.get("/health")
async def health() -> tuple[Response, int]:
    svc = services()
    checks: dict[str, dict[str, Any]] = {}
    if svc.settings.demo:
        checks["n8n"] = {"status": "ok", "detail": "demo echo upstream"}
    else:
        checks["n8n"] = await svc.upstream.health()
    try:
        await svc.store.ping()
        checks["store"] = {"status": "ok", "backend": svc.store.name}
    except StoreUnavailable as exc:
        checks["store"] = {"status": "fail", "backend": svc.store.name, "detail": str(exc)[:200]}
    failing = [name for name, check in checks.items() if check["status"] != "ok"]
    body: dict[str, Any] = {"status": "degraded" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    if not svc.turns.accepting:
        body["status"] = "shutting_down"
        return jsonify(body), 503
    return jsonify(body), 503 if failing else 200


def operator_access(svc: Services, *, required: bool) -> bool:
    """Whether this request may see operator data (/metrics, /status): with METRICS_TOKEN set,
    only `Authorization: Bearer <METRICS_TOKEN>` (constant-time compare); without it, anyone.
    With `required`, a refusal raises 401 instead of returning False."""
    token = svc.settings.metrics_token
    if not token:
        return True
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return True
    if required:
        raise ApiError(401, "unauthorized", "A valid metrics token is required.")
    return False


@bp.get("/metrics")
async def prometheus() -> Response:
    """Prometheus text exposition, summed over all workers, for operators only
    (`operator_access`)."""
    operator_access(services(), required=True)
    body = await trio.to_thread.run_sync(metrics.render)
    response = Response(body, status=200, content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
async def index() -> Response:
    """The demo page (demo mode only); elsewhere the root is not part of the API."""
    if not services().settings.demo:
        return jsonify({"service": "quartproxy", "health": "/health"})
    static = current_app.static_folder
    assert static is not None
    return await send_from_directory(static, "demo.html")
