"""Operations endpoints: health, metrics, and the demo page."""

from __future__ import annotations

import hmac
from typing import Any

import trio
from quart import Blueprint, Response, current_app, jsonify, request, send_from_directory

from .. import metrics, supervision
from ..errors import ApiError
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
    restarts = supervision.restarts()
    if restarts is not None:  # served by a supervised worker: how many were replaced, and why
        body["workers"] = {"restarts": restarts}
    if not svc.turns.accepting:
        body["status"] = "shutting_down"
        return jsonify(body), 503
    return jsonify(body), 503 if failing else 200


@bp.get("/metrics")
async def prometheus() -> Response:
    """Prometheus text exposition, summed over all workers. With METRICS_TOKEN set, only for
    `Authorization: Bearer <METRICS_TOKEN>`."""
    token = services().settings.metrics_token
    if token:
        scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            raise ApiError(401, "unauthorized", "A valid metrics token is required.")
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
