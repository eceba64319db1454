"""widget.js as served: compressed once at start, a versioned immutable URL, its SRI hash.

- `/static/widget.<digest>.js`: the content-named script, `Cache-Control: public,
  max-age=31536000, immutable` (a new build has a new name); another digest is 404.
- `/static/widget.js`: the same bytes for existing embeds, cached for a short while only.
- `/static/widget.json`: where the current one is and its `integrity` for `<script integrity>`.
Every answer is gzip (or brotli, when the `brotli` package is installed) by `Accept-Encoding`,
with `Vary: Accept-Encoding`, an ETag per representation and 304 for a matching If-None-Match.
"""

from __future__ import annotations

import logging
from pathlib import Path

from quart import Blueprint, Quart, Response, current_app, jsonify, request

from ..core.assets import Asset, Compressor, choose_encoding
from ..errors import ApiError

log = logging.getLogger("quartproxy")
bp = Blueprint("assets", __name__)
KEY = "quartproxy_widget"
SHORT = "public, max-age=300"
IMMUTABLE = "public, max-age=31536000, immutable"


def brotli_compressor() -> Compressor | None:
    """Brotli when a maintained binding is installed (optional): `brotli`, else `brotlicffi`."""
    for name in ("brotli", "brotlicffi"):
        try:
            module = __import__(name)
        except ImportError:
            continue

        def compress(data: bytes, _m: object = module) -> bytes:
            return bytes(_m.compress(data, quality=11))  # type: ignore[attr-defined]

        return compress
    return None


def install(app: Quart, static_dir: Path) -> Asset:
    """Read and compress widget.js once, publish its versioned URL and SRI in the log."""
    asset = Asset.build((static_dir / "widget.js").read_bytes(), brotli_compressor())
    app.extensions[KEY] = asset
    app.register_blueprint(bp)
    sizes = ", ".join(f"{k} {len(v)} B" for k, v in asset.bodies.items())
    log.info("widget: /static/widget.%s.js integrity=%s (%s)", asset.digest, asset.integrity, sizes)
    return asset


def current() -> Asset:
    asset: Asset = current_app.extensions[KEY]
    return asset


def serve(asset: Asset, cache: str) -> Response:
    encoding = choose_encoding(request.headers.get("Accept-Encoding"), tuple(asset.bodies))
    etag = asset.etag(encoding)
    headers = {"Cache-Control": cache, "ETag": etag, "Vary": "Accept-Encoding"}
    if encoding != "identity":
        headers["Content-Encoding"] = encoding
    wanted = request.headers.get("If-None-Match", "")
    if etag in [t.strip().removeprefix("W/") for t in wanted.split(",")] or wanted.strip() == "*":
        return Response(b"", status=304, headers=headers)
    body = asset.bodies[encoding]
    response = Response(body, mimetype="text/javascript", headers=headers)
    response.content_length = len(body)
    return response


@bp.get("/static/widget.js")
async def widget() -> Response:
    return serve(current(), SHORT)


@bp.get("/static/widget.<digest>.js")
async def widget_versioned(digest: str) -> Response:
    asset = current()
    if digest != asset.digest:
        raise ApiError(404, "not_found", "No such widget version; see /static/widget.json.")
    return serve(asset, IMMUTABLE)


@bp.get("/static/widget.json")
async def widget_manifest() -> tuple[Response, int, dict[str, str]]:
    asset = current()
    body = {
        "url": f"/static/widget.{asset.digest}.js",
        "integrity": asset.integrity,
        "encodings": {k: len(v) for k, v in asset.bodies.items()},
    }
    return jsonify(body), 200, {"Cache-Control": SHORT}
