"""Test support: a fake n8n and the proxy, both served by a real Hypercorn on port 0.

The fake n8n is a plain ASGI app whose behaviour is chosen by the chat message itself, so a test
reads as what a user would type:

    default            streams "echo: <message>" word by word (begin/item/end)
    json:<text>        one JSON body {"output": text}
    text:<text>        one JSON body {"text": text}
    status:<code>      that HTTP status with a JSON body
    error-mid          begin, one item, then an error chunk
    cut                begin, one item, then the body ends (no `end`)
    garbage            begin, a garbage line, item "ok", end
    empty              200 with an empty body
    gate:<name>        item "before", waits for `fake.gates[name]`, item "after", end
    stall              sends nothing until `fake.gates["stall"]` is set
    stall-body         sends headers, then nothing until `fake.gates["stall"]` is set
    claims             streams the JSON of the JWT claims it received
    groups             two begin/item/end groups (two nodes)
    gzip:<text>        streams <text> as one item, gzip-encoded whatever the request accepts

`loadPreviousSession` answers from what the fake was told in `fake.memory[session_id]`.
Waiting is on trio Events, never on sleeps.
"""

from __future__ import annotations

import email.parser
import email.policy
import functools
import gzip
import json
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from quartproxy.config import Settings, load_settings
from quartproxy.core.n8n_parse import langchain_message
from tests.asgi import read_request

JWT_SECRET = "test-jwt-secret-0123456789-abcdefghijklmnop"
SESSION_SECRET = "test-session-secret-0123456789-abcdefghijk"
ORIGIN = "https://shop.example.com"
OTHER_ORIGIN = "https://evil.example.net"
FINGERPRINT = "fp-test-browser-1"
# What a browser sends with a widget's fetch: the bot check (core.screening) scores requests
# without them, so test clients speak like the browser a widget runs in.
BROWSER_HEADERS = {
    "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Accept-Language": "en-GB,en;q=0.9",
    "Sec-Fetch-Site": "cross-site",
    "Sec-Fetch-Mode": "cors",
    "Sec-Fetch-Dest": "empty",
}

META = {"nodeId": "n1", "nodeName": "Respond", "itemIndex": 0, "runIndex": 0}


def chunk(kind: str, content: str | None = None, meta: dict[str, Any] | None = None) -> bytes:
    obj: dict[str, Any] = {"type": kind, "metadata": meta or META}
    if content is not None:
        obj["content"] = content
    return (json.dumps(obj) + "\n").encode()


def form_data(content_type: str, body: bytes) -> dict[str, Any]:
    """A multipart body as n8n reads it, decoded by the standard library's email parser (not
    the proxy's own parser): the text fields, and `files` as [{"name", "type", "data"}]."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    assert msg.is_multipart() and msg.defects == [], msg.defects
    out: dict[str, Any] = {"files": []}
    for part in msg.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if part.get_filename() is None:
            assert name not in out
            out[name] = data.decode()
        else:
            assert name == "files"
            out["files"].append(
                {"name": part.get_filename(), "type": part.get_content_type(), "data": data}
            )
    return out


@dataclass
class FakeN8n:
    secret: str = SESSION_SECRET
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    gates: defaultdict[str, trio.Event] = field(default_factory=lambda: defaultdict(trio.Event))
    memory: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)  # messages whose answer was fully sent
    done: defaultdict[str, trio.Event] = field(default_factory=lambda: defaultdict(trio.Event))
    received: trio.Event = field(default_factory=trio.Event)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = await read_request(scope, receive, send)
        if body is None:
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/healthz":
            await self._json(send, 200, {"status": "ok"})
            return
        token = headers.get("authorization", "").partition(" ")[2]
        if not token:
            await self._json(send, 401, {"message": "No token provided"})
            return
        try:
            claims = jwt.decode(token, self.secret, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            await self._json(send, 403, {"message": "jwt expired"})
            return
        except jwt.PyJWTError:
            await self._json(send, 403, {"message": "invalid signature"})
            return
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            payload = form_data(ctype, body)
        else:
            payload = json.loads(body or b"{}")
        self.requests.append({"headers": headers, "body": payload, "claims": claims})
        self.received.set()
        if payload.get("action") == "loadPreviousSession":
            sid = payload.get("sessionId", "")
            data = [langchain_message(r, t) for r, t in self.memory.get(sid, [])]
            await self._json(send, 200, {"data": data})
            return
        message = str(payload.get("chatInput", ""))
        await self._answer(send, message, claims)
        self.finished.append(message)
        self.done[message].set()

    async def _json(self, send: Any, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        await self._start(send, status)
        await send({"type": "http.response.body", "body": data})

    async def _start(self, send: Any, status: int = 200) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json; charset=utf-8")],
            }
        )

    async def _stream(self, send: Any, parts: list[bytes]) -> None:
        await self._start(send)
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async def _answer(self, send: Any, message: str, claims: dict[str, Any]) -> None:
        cmd, _, arg = message.partition(":")
        if cmd == "json":
            await self._json(send, 200, {"output": arg})
        elif cmd == "text":
            await self._json(send, 200, {"text": arg})
        elif cmd == "status":
            await self._json(send, int(arg), {"message": "Error in workflow"})
        elif cmd == "error-mid":
            await self._stream(
                send, [chunk("begin"), chunk("item", "partial"), chunk("error", "boom")]
            )
        elif cmd == "cut":
            await self._stream(send, [chunk("begin"), chunk("item", "partial")])
        elif cmd == "garbage":
            await self._stream(
                send, [chunk("begin"), b"<html>oops</html>\n", chunk("item", "ok"), chunk("end")]
            )
        elif cmd == "empty":
            await self._stream(send, [])
        elif cmd == "claims":
            await self._stream(
                send, [chunk("begin"), chunk("item", json.dumps(claims)), chunk("end")]
            )
        elif cmd == "groups":
            m2 = {**META, "nodeId": "n2"}
            await self._stream(
                send,
                [
                    chunk("begin"),
                    chunk("item", "one "),
                    chunk("end"),
                    chunk("begin", meta=m2),
                    chunk("item", "two", m2),
                    chunk("end", meta=m2),
                ],
            )
        elif cmd == "gzip":
            body = b"".join([chunk("begin"), chunk("item", arg), chunk("end")])
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json; charset=utf-8"),
                        (b"content-encoding", b"gzip"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": gzip.compress(body)})
        elif cmd == "gate":
            await self._start(send)
            for part in (chunk("begin"), chunk("item", "before ")):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await self.gates[arg].wait()
            for part in (chunk("item", "after"), chunk("end")):
                await send({"type": "http.response.body", "body": part, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif cmd == "stall":
            await self.gates["stall"].wait()
            await self._json(send, 200, {"output": "late"})
        elif cmd == "stall-body":
            await self._start(send)
            await self.gates["stall"].wait()
            await send({"type": "http.response.body", "body": b""})
        else:
            words = f"echo: {message}".split(" ")
            items = [
                chunk("item", w + (" " if i < len(words) - 1 else "")) for i, w in enumerate(words)
            ]
            await self._stream(send, [chunk("begin"), *items, chunk("end")])


@asynccontextmanager
async def served(app: Any, **config: Any) -> AsyncIterator[str]:
    """Serve an ASGI app with a real Hypercorn on 127.0.0.1:<free port>; yields the base URL."""
    cfg = Config()
    cfg.bind = ["127.0.0.1:0"]
    cfg.accesslog = None
    cfg.graceful_timeout = config.pop("graceful_timeout", 1.0)
    for key, value in config.items():
        setattr(cfg, key, value)
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            functools.partial(serve, app, cfg, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
        )
        try:
            yield binds[0].replace("0.0.0.0", "127.0.0.1")
        finally:
            stop.set()


def free_port() -> int:
    """A port with nothing listening (for "connection refused")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_for(n8n_url: str, **env: str) -> Settings:
    base = {
        "JWT_SECRET_KEY": JWT_SECRET,
        "SESSION_SECRET_KEY": SESSION_SECRET,
        "N8N_WEBHOOK_URL": n8n_url,
        "ALLOWED_ORIGINS": f"{ORIGIN},https://*.example.org",
        "LOG_FORMAT": "text",
        "HEARTBEAT_SECONDS": "15",
    }
    base.update(env)
    return load_settings(base)


@dataclass
class Proxy:
    url: str
    app: Any
    settings: Settings
    client: httpx.AsyncClient

    @property
    def services(self) -> Any:
        return self.app.extensions["quartproxy"]

    async def session(
        self, *, origin: str = ORIGIN, fingerprint: str | None = FINGERPRINT
    ) -> dict[str, str]:
        body = {"fingerprint": fingerprint} if fingerprint else {}
        r = await self.client.post("/api/v1/session/create", json=body, headers={"Origin": origin})
        assert r.status_code == 201, r.text
        return dict(r.json())

    def auth(
        self,
        session: dict[str, str],
        *,
        origin: str = ORIGIN,
        fingerprint: str | None = FINGERPRINT,
    ) -> dict[str, str]:
        headers = {"Origin": origin, "Authorization": f"Bearer {session['token']}"}
        if fingerprint:
            headers["X-Chat-Fingerprint"] = fingerprint
        return headers


@asynccontextmanager
async def running_proxy(settings: Settings, **kwargs: Any) -> AsyncIterator[Proxy]:
    from quartproxy.factory import create_app
    from quartproxy.server import apply_settings

    app = create_app(settings, **kwargs)
    # the Hypercorn settings `python -m quartproxy` derives from the app's (WebSocket bound)
    derived = apply_settings(Config(), settings)
    async with (
        served(app, websocket_max_message_size=derived.websocket_max_message_size) as url,
        httpx.AsyncClient(base_url=url, timeout=30, headers=BROWSER_HEADERS) as client,
    ):
        yield Proxy(url, app, settings, client)


@dataclass
class SseEvent:
    id: str | None
    event: str
    data: Any


def parse_sse(text: str) -> list[SseEvent]:
    """Events of an SSE body (comments dropped)."""
    out: list[SseEvent] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        if "event" in fields or "data" in fields:
            data = fields.get("data", "")
            out.append(SseEvent(fields.get("id"), fields.get("event", "message"), json.loads(data)))
    return out


async def sse_turn(
    proxy: Proxy, session: dict[str, str], message: str, **kw: Any
) -> list[SseEvent]:
    r = await proxy.client.post(
        "/api/v1/chat/message", json={"message": message}, headers=proxy.auth(session, **kw)
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    return parse_sse(r.text)
