"""Operations endpoints: health, and the demo page."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, current_app, jsonify, send_from_directory

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


@bp.get("/")
async def index() -> Response:
    """The demo page (demo mode only); elsewhere the root is not part of the API."""
    if not services().settings.demo:
        return jsonify({"service": "quartproxy", "health": "/health"})
    static = current_app.static_folder
    assert static is not None
    return await send_from_directory(static, "demo.html")
