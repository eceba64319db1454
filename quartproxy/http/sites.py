"""A site's public widget defaults: `GET /api/v1/sites/{site_id}/widget` (docs/sites.md).

The widget asks for them when the page sets no title, greeting, language, theme or accent of
its own, so a site owner changes them in the sites file, not on every page. Only a page of
that site may ask (its Origin must be one of the site's), at the per-IP read budget; the
answer holds nothing secret (no webhook, no secret, no limits).
"""

from __future__ import annotations

from quart import Blueprint, Response, jsonify

from .. import guard
from ..errors import ApiError
from .common import caller, services

bp = Blueprint("sites", __name__)


@bp.get("/api/v1/sites/<site_id>/widget")
async def widget_defaults(site_id: str) -> Response:
    svc = services()
    who = caller()
    site, _ = guard.admit_site(svc, who)
    if site.id != site_id:  # a page of another site: as a request from an unknown origin
        raise ApiError(403, "origin_not_allowed", "This site is not allowed to use this chat.")
    await guard.limit_read(svc, who, site)
    response = jsonify({"site": site.id, **site.widget.public()})
    response.headers["Cache-Control"] = "private, max-age=60"
    return response
