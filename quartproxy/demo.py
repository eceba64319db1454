"""The built-in echo upstream for `python -m quartproxy demo`.

It stands where n8n would, behind the same httpx client, JWT and parser as a real upstream:
it checks the 30-second token, answers `loadPreviousSession` from its own memory, and streams
its answer word by word in n8n's begin/item/end chunks.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import trio

from .core.n8n_parse import langchain_message

_META = {"nodeId": "demo-echo", "nodeName": "Demo echo", "itemIndex": 0, "runIndex": 0}


def demo_answer(message: str) -> str:
    return (
        f"You said: **{message}**\n\n"
        "This answer comes from quartproxy's built-in *demo* upstream, streamed word by word "
        "the way n8n streams. Set `N8N_WEBHOOK_URL` (and the other settings of "
        "docs/settings.md) to talk to your own n8n workflow."
    )


def ndjson_chunks(text: str) -> list[bytes]:
    """n8n's streaming body for `text`, one item per word (with its trailing space)."""
    lines = [{"type": "begin", "metadata": _META}]
    lines += [
        {"type": "item", "content": w, "metadata": _META} for w in re.findall(r"\S+\s*|\s+", text)
    ]
    lines.append({"type": "end", "metadata": _META})
    return [(json.dumps(line, ensure_ascii=False) + "\n").encode() for line in lines]


class _Paced(httpx.AsyncByteStream):
    def __init__(self, chunks: list[bytes], delay: float) -> None:
        self.chunks = chunks
        self.delay = delay

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
            await trio.sleep(self.delay)

    async def aclose(self) -> None:
        return None


class EchoTransport(httpx.AsyncBaseTransport):
    def __init__(self, session_secret: str, delay: float = 0.04) -> None:
        self.secret = session_secret
        self.delay = delay
        self.memory: dict[str, list[tuple[str, str]]] = defaultdict(list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        auth = request.headers.get("Authorization", "")
        try:
            jwt.decode(
                auth.partition(" ")[2],
                self.secret,
                algorithms=["HS256", "HS384", "HS512"],
                options={"require": ["exp", "iat", "jti"]},
            )
        except jwt.PyJWTError as exc:
            return httpx.Response(403, json={"message": str(exc)})
        body = json.loads(await request.aread())
        session_id = str(body.get("sessionId", ""))
        if body.get("action") == "loadPreviousSession":
            data = [langchain_message(role, text) for role, text in self.memory[session_id]]
            return httpx.Response(200, json={"data": data})
        message = str(body.get("chatInput", ""))
        answer = demo_answer(message)
        self.memory[session_id] += [("user", message), ("assistant", answer)]
        return httpx.Response(
            200,
            headers={"Content-Type": "application/json; charset=utf-8"},
            stream=_Paced(ndjson_chunks(answer), self.delay),
        )


def worker_app() -> Any:
    """The demo app built in a worker process: `python -m quartproxy demo` with DEBUG=true
    serves `quartproxy.demo:worker_app()` under the reloading supervisor (the origins come from
    the command, through the environment the worker inherits)."""
    import os

    from .config import demo_settings, environment
    from .factory import create_app
    from .logs import setup_logging

    settings = demo_settings(os.environ["QUARTPROXY_DEMO_ORIGINS"].split(","), environment())
    setup_logging(settings)
    return create_app(settings)
