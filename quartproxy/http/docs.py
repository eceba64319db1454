"""/openapi.json and /docs. The docs page is rendered here, as plain HTML with no script and
nothing loaded from elsewhere (quart-schema's pages load JavaScript from CDNs)."""

from __future__ import annotations

import json
from functools import cache
from html import escape
from typing import Any

from quart import Blueprint, Response

from .. import openapi

bp = Blueprint("docs", __name__)

METHOD_ORDER = ("get", "post", "delete")


@cache
def _spec_bytes() -> bytes:
    return json.dumps(openapi.document(), ensure_ascii=False, indent=1).encode()


@cache
def _page() -> bytes:
    spec = openapi.document()
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{escape(spec['info']['title'])} API</title><style>",
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}",
        "code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:.1rem .3rem}",
        "pre{padding:.6rem;overflow:auto}section{border-top:1px solid #ddd;padding:.5rem 0}",
        ".m{font-weight:700;text-transform:uppercase;margin-right:.5rem}",
        "</style></head><body>",
        f"<h1>{escape(spec['info']['title'])} API</h1>",
        f"<p>{escape(spec['info']['description'])}</p>",
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a> (OpenAPI 3.1).</p>",
    ]
    for path, ops in spec["paths"].items():
        for method in METHOD_ORDER:
            op: dict[str, Any] | None = ops.get(method)
            if op is None:
                continue
            out.append(
                f"<section id='{escape(method + path)}'><h2><span class='m'>{method}</span>"
                f"<code>{escape(path)}</code></h2><p>{escape(op['summary'])}</p>"
            )
            if op.get("description"):
                out.append(f"<pre>{escape(op['description'])}</pre>")
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                name = body["schema"]["$ref"].rsplit("/", 1)[-1]
                schema = json.dumps(spec["components"]["schemas"][name], indent=1)
                out.append(f"<p>Request body <code>{escape(name)}</code></p>")
                out.append(f"<pre>{escape(schema)}</pre>")
            out.append("<ul>")
            for status, response in op["responses"].items():
                out.append(f"<li><code>{escape(status)}</code> {escape(response['description'])}")
            out.append("</ul></section>")
    out.append("</body></html>")
    return "".join(out).encode()


@bp.get("/openapi.json")
async def openapi_json() -> Response:
    return Response(_spec_bytes(), content_type="application/json")


@bp.get("/docs")
async def docs_page() -> Response:
    response = Response(_page(), content_type="text/html; charset=utf-8")
    # No script runs here, and nothing may be loaded from elsewhere.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    return response
