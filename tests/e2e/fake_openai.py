"""A fake OpenAI-compatible chat-completions server, so n8n's AI Agent can stream with no model.

n8n's "OpenAI Chat Model" node (lmChatOpenAi 1.2) calls `POST {base url}/chat/completions` through
the openai SDK. This app answers with a deterministic text derived from the last user message,
streamed as one Server-Sent Event per token when the request asks for `stream: true`, or as one
JSON body otherwise. Every request body is recorded so tests can see what n8n sent to the model.

A user message containing `[gate:NAME]` makes the streamed answer stop after its first token
until the test calls `ThreadedServer.open_gate(NAME)`: proof without sleeps that a token travels
through n8n (and the proxy) before the model has finished.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import hypercorn.config
import hypercorn.trio
import trio

from tests.asgi import read_request

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MODEL = "qp-fake-model"
GATE = re.compile(r"\[gate:(\w+)\]")


def answer_tokens(messages: list[dict[str, Any]]) -> list[str]:
    """The tokens of the fake answer to a chat-completions `messages` list.

    The answer names the last user message and how many user messages the model saw, so tests can
    tell that n8n passed the message and (with a memory node) the earlier turns.
    """
    user_texts = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
    last = user_texts[-1] if user_texts else ""
    text = f"Fake model heard: {last} (turn {len(user_texts)})"
    return split_tokens(text)


def split_tokens(text: str) -> list[str]:
    """Split like a tokenizer might: words with their leading space, punctuation on its own."""
    return re.findall(r"\s*\w+|\s*[^\w\s]", text)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "..."}]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-qp-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def sse_events(tokens: list[str], include_usage: bool) -> list[bytes]:
    """The SSE body of a streamed completion, one event per token."""
    chunks = [_chunk({"role": "assistant", "content": ""})]
    chunks += [_chunk({"content": t}) for t in tokens]
    chunks.append(_chunk({}, "stop"))
    if include_usage:
        usage = {
            "prompt_tokens": 1,
            "completion_tokens": len(tokens),
            "total_tokens": len(tokens) + 1,
        }
        chunks.append({**_chunk({}), "choices": [], "usage": usage})
    events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
    events.append(b"data: [DONE]\n\n")
    return events


def completion(tokens: list[str]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-qp-fake",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "".join(tokens)},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1,
            "completion_tokens": len(tokens),
            "total_tokens": len(tokens) + 1,
        },
    }


class FakeOpenAI:
    """The ASGI app. `requests` holds every parsed chat-completions request body, in order."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._gates: dict[str, trio.Event] = {}  # touched only in the server's trio thread

    def gate(self, name: str) -> trio.Event:
        return self._gates.setdefault(name, trio.Event())

    def open_gate(self, name: str) -> None:
        self.gate(name).set()

    def recorded(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.requests)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_request(scope, receive, send)
        if body is None:
            return
        path: str = scope["path"]
        if scope["method"] == "GET" and path.endswith("/models"):
            await _send_json(
                send, 200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]}
            )
            return
        if scope["method"] != "POST" or not path.endswith("/chat/completions"):
            await _send_json(send, 404, {"error": {"message": f"no route {path}"}})
            return
        request = json.loads(body or b"{}")
        with self._lock:
            self.requests.append(request)
        tokens = answer_tokens(request.get("messages", []))
        if not request.get("stream"):
            await _send_json(send, 200, completion(tokens))
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        messages = request.get("messages", [])
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        gate = GATE.search(users[-1]) if users else None
        for index, event in enumerate(sse_events(tokens, include_usage)):
            if gate is not None and index == 2:  # after the role chunk and the first token
                await self.gate(gate.group(1)).wait()
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _send_json(send: Send, status: int, payload: Any) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class ThreadedServer:
    """Serve an ASGI app with Hypercorn (trio worker) on 127.0.0.1:<free port> in a thread.

    For session-wide servers that a separate process (n8n) calls; trio fixtures are per test.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.url = ""
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except Exception as exc:  # reported to the thread that waits in start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        config = hypercorn.config.Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.errorlog = None
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(hypercorn.trio.serve, self.app, config, shutdown_trigger=self._stop.wait)
            )
            self.url = binds[0]
            self._ready.set()

    def start(self) -> str:
        self._thread.start()
        if not self._ready.wait(timeout=30) or self._error is not None:
            raise RuntimeError(f"fake OpenAI server did not start: {self._error!r}")
        return self.url

    def open_gate(self, name: str) -> None:
        """Let a `[gate:NAME]` answer go on (blocking; call it from a worker thread in trio)."""
        trio.from_thread.run_sync(self.app.open_gate, name, trio_token=self._token)

    def stop(self) -> None:
        if self._token is not None and self._stop is not None:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(timeout=30)
