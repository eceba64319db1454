"""Real servers for the browser tests, run outside the test's thread.

Playwright's sync API drives Chromium from the test thread; everything the browser talks to runs
in one background thread with its own trio loop:

- a fake n8n (a plain ASGI app served by Hypercorn) that streams n8n's NDJSON chunks and can
  hold any chunk behind a gate the test opens;
- the proxy itself (`create_app`) served by Hypercorn on its own port;
- a TCP relay in front of the proxy whose open connections the test can cut, which is what a
  dropped mobile connection looks like to the browser;

and the customer's page comes from a separate `http.server` on another port, so the widget is
embedded cross-origin exactly as on a real site.
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import re
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from quartproxy.config import load_settings
from quartproxy.factory import create_app
from tests.asgi import read_request
from tests.support import form_data

WAIT = 15.0  # upper bound for a background thread to answer; never a synchronisation sleep

ASGIReceive = Callable[[], Awaitable[dict[str, Any]]]
ASGISend = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Script:
    """What the fake n8n answers to one message: `chunks` in order; a gate at index i holds
    chunk i until the test opens it; `sent[i]` is set once chunk i has been written."""

    chunks: list[str]
    gates: dict[int, threading.Event] = field(default_factory=dict)
    sent: list[threading.Event] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sent = [threading.Event() for _ in self.chunks]

    def gate(self, index: int) -> threading.Event:
        return self.gates.setdefault(index, threading.Event())

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def words(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


class FakeN8n:
    """Speaks n8n's webhook protocol: sendMessage streams begin/item/end NDJSON chunks,
    loadPreviousSession answers from memory in LangChain's serialised form."""

    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        self.remember = True
        self.memory: dict[str, list[tuple[str, str]]] = defaultdict(list)
        self.received: list[dict[str, Any]] = []

    def script(self, message: str, chunks: list[str]) -> Script:
        s = Script(chunks)
        self.scripts[message] = s
        return s

    async def __call__(self, scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
        body = await read_request(scope, receive, send)
        if body is None:
            return
        ctype = dict(scope["headers"]).get(b"content-type", b"").decode()
        if ctype.startswith("multipart/form-data"):  # a message with files (attachments)
            data = form_data(ctype, body)
        else:
            data = json.loads(body or b"{}")
        self.received.append(data)
        session = str(data.get("sessionId", ""))
        if data.get("action") == "loadPreviousSession":
            kinds = {"user": "HumanMessage", "assistant": "AIMessage"}
            history = [
                {
                    "lc": 1,
                    "type": "constructor",
                    "id": ["langchain_core", "messages", kinds[role]],
                    "kwargs": {"content": text, "additional_kwargs": {}, "response_metadata": {}},
                }
                for role, text in (self.memory[session] if self.remember else [])
            ]
            await self._json(send, {"data": history})
            return
        message = str(data.get("chatInput", ""))
        script = self.scripts.get(message) or Script(words(f"You said: {message}"))
        meta = {"nodeId": "fake", "nodeName": "Fake agent", "itemIndex": 0, "runIndex": 0}
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json; charset=utf-8")],
            }
        )
        await self._line(send, {"type": "begin", "metadata": meta})
        for i, chunk in enumerate(script.chunks):
            gate = script.gates.get(i)
            if gate is not None:
                await trio.to_thread.run_sync(gate.wait, abandon_on_cancel=True)
            await self._line(send, {"type": "item", "content": chunk, "metadata": meta})
            script.sent[i].set()
        await self._line(send, {"type": "end", "metadata": meta})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        script.finished.set()
        self.memory[session] += [("user", message), ("assistant", script.text)]

    @staticmethod
    async def _line(send: ASGISend, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj) + "\n").encode()
        await send({"type": "http.response.body", "body": line, "more_body": True})

    @staticmethod
    async def _json(send: ASGISend, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class Relay:
    """A TCP relay in front of the proxy. `cut()` closes every open connection at once (the
    browser sees its stream end mid-body); new connections are relayed as before."""

    def __init__(self) -> None:
        self.scopes: set[trio.CancelScope] = set()
        self.cuts = 0
        self.stopper = trio.CancelScope()

    async def run(self, target: int, *, task_status: trio.TaskStatus[int]) -> None:
        with self.stopper:
            listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
            port = listeners[0].socket.getsockname()[1]
            task_status.started(port)
            await trio.serve_listeners(functools.partial(self._handle, target), listeners)

    async def _handle(self, target: int, client: trio.SocketStream) -> None:
        with trio.CancelScope() as scope:
            self.scopes.add(scope)
            try:
                upstream = await trio.open_tcp_stream("127.0.0.1", target)
                async with client, upstream, trio.open_nursery() as nursery:
                    nursery.start_soon(self._pipe, client, upstream, nursery.cancel_scope)
                    nursery.start_soon(self._pipe, upstream, client, nursery.cancel_scope)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass
            finally:
                self.scopes.discard(scope)

    @staticmethod
    async def _pipe(src: trio.SocketStream, dst: trio.SocketStream, done: trio.CancelScope) -> None:
        async for data in src:
            await dst.send_all(data)
        done.cancel()

    def cut(self) -> None:
        self.cuts += 1
        for scope in list(self.scopes):
            scope.cancel()


class Stack:
    """Fake n8n + proxy + relay in a background trio thread. `proxy_url` is the proxy itself,
    `relay_url` the same proxy behind the cuttable relay."""

    def __init__(
        self,
        page_origin: str,
        env: dict[str, str] | None = None,
        *,
        tls: tuple[str, str] | None = None,
    ) -> None:
        self.page_origin = page_origin
        self.env = env or {}
        self.tls = tls  # (certfile, keyfile): the proxy serves HTTPS and HTTP/2 itself
        self.seen: list[tuple[str, str, str]] = []  # (scope type, http_version, path) at the proxy
        self.n8n = FakeN8n()
        self.relay = Relay()
        self.proxy_url = ""
        self.relay_url = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    def __enter__(self) -> Stack:
        self._thread.start()
        if not self._ready.wait(WAIT):
            raise RuntimeError("the servers did not start")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: object) -> None:
        if self._token is not None and self._stop is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(WAIT)

    def cut(self) -> None:
        assert self._token is not None
        trio.from_thread.run_sync(self.relay.cut, trio_token=self._token)

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                n8n_url = await self._serve(nursery, self.n8n)
                env = {
                    "JWT_SECRET_KEY": "browser-tests-jwt-secret-" + "j" * 40,
                    "SESSION_SECRET_KEY": "browser-tests-session-secret-" + "s" * 40,
                    "N8N_WEBHOOK_URL": n8n_url + "/webhook/chat",
                    "ALLOWED_ORIGINS": self.page_origin,
                    "LOG_FORMAT": "text",
                    "LOG_LEVEL": "ERROR",
                    **self.env,
                }
                self.proxy_url = await self._serve(
                    nursery, self._recording(create_app(load_settings(env))), tls=self.tls
                )
                port = int(self.proxy_url.rsplit(":", 1)[1])
                relay_port = await nursery.start(self.relay.run, port)
                self.relay_url = f"http://127.0.0.1:{relay_port}"
                self._ready.set()
                await self._stop.wait()
                self.relay.stopper.cancel()
                nursery.cancel_scope.deadline = trio.current_time() + 5  # bound, not a wait
        except BaseException as exc:  # reported to the test thread, then re-raised here
            self._error = exc
            self._ready.set()
            raise

    def _recording(self, app: Any) -> Any:
        async def recording(scope: dict[str, Any], receive: ASGIReceive, send: ASGISend) -> None:
            if scope["type"] in ("http", "websocket"):
                self.seen.append((scope["type"], scope.get("http_version", ""), scope["path"]))
            await app(scope, receive, send)

        return recording

    async def _serve(
        self, nursery: trio.Nursery, app: Any, tls: tuple[str, str] | None = None
    ) -> str:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        if tls:
            config.certfile, config.keyfile = tls
        config.accesslog = None
        config.errorlog = None
        config.graceful_timeout = 1
        assert self._stop is not None
        binds = await nursery.start(
            functools.partial(serve, app, config, shutdown_trigger=self._stop.wait)
        )
        return str(binds[0])


class PageServer:
    """The customer's site: another origin than the proxy. Pages are set by the test."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path.split("?")[0])
                if body is None:
                    self.send_error(404)
                    return
                raw = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def embed_page(script_src: str, attrs: dict[str, str], *, head: str = "", before: str = "") -> str:
    """A customer page with some content of its own (styles that must not leak into the
    widget, a focusable link before it) and the one-tag embed."""
    data = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in attrs.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Customer site</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body {{ font: 20px/2 Georgia, serif; color: #7a0000; }}
  div, p, button, textarea {{ color: #ff00ff !important; background: #00ff00; }}
</style>
<script>window.__xss = []; window.__events = [];</script>
{head}
</head><body>
<h1>Customer site</h1>
<p><a href="#top" id="first-link">A link on the page</a></p>
{before}
<script src="{html.escape(script_src)}" {data} async></script>
</body></html>"""


def iter_requests(log: list[str], *origins: str) -> Iterator[str]:
    """URLs in `log` that went to none of `origins`."""
    for url in log:
        if not any(url.startswith(o) for o in origins) and not url.startswith("data:"):
            yield url
