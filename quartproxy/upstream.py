"""The n8n client: one shared httpx.AsyncClient, a fresh 30-second JWT on every call, and the
contract's error mapping. Bytes go through core.n8n_parse; callers only ever see turn events."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from .config import Settings
from .core.events import Delta, Error, TurnEvent
from .core.n8n_parse import N8nAnswerParser, parse_history
from .core.tokens import upstream_token

log = logging.getLogger("quartproxy.upstream")

UNAVAILABLE = Error("upstream_unavailable", "The assistant is unavailable right now.")
TIMEOUT = Error("upstream_timeout", "The assistant took too long to answer.")
REJECTED = Error("upstream_error", "The assistant could not answer this message.")
CUT = Error("upstream_error", "The assistant's answer was cut off before it finished.")


class N8nClient:
    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.url = settings.n8n_webhook_url
        self._clock = clock
        limits = httpx.Limits(
            max_connections=settings.n8n_max_connections,
            max_keepalive_connections=min(settings.n8n_max_connections, 200),
            keepalive_expiry=30.0,
        )
        # Timeouts are enforced with trio cancel scopes around each step (first byte, gap
        # between chunks) so they read as the contract states them; httpx only bounds connect
        # and the wait for a pooled connection.
        timeout = httpx.Timeout(
            connect=min(10.0, settings.n8n_timeout_seconds),
            read=None,
            write=30.0,
            pool=settings.n8n_timeout_seconds,
        )
        self.client = httpx.AsyncClient(
            transport=transport, limits=limits, timeout=timeout, follow_redirects=False
        )
        self._health: tuple[float, dict[str, Any]] | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    def _headers(
        self, *, session_id: str, origin: str, message_id: str, request_id: str
    ) -> dict[str, str]:
        token = upstream_token(
            self.settings.session_secret_key,
            session_id=session_id,
            origin=origin,
            message_id=message_id,
            now=self._clock(),
            algorithm=self.settings.n8n_jwt_algorithm,
        )
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "text/plain, application/json",
            # n8n gzips streamed answers when asked (httpx asks by default); a compressor may
            # hold back small chunks, so ask for the bytes as they are produced.
            "Accept-Encoding": "identity",
            "X-Request-ID": request_id,
        }

    async def stream_answer(
        self,
        *,
        session_id: str,
        origin: str,
        message_id: str,
        message: str,
        metadata: dict[str, Any],
        request_id: str,
    ) -> AsyncGenerator[TurnEvent, None]:
        """Deltas as n8n produces them, then at most one Error. No Error means the answer is
        whole. Never raises for upstream trouble (only Cancelled propagates)."""
        body = {
            "action": "sendMessage",
            "sessionId": session_id,
            "chatInput": message,
            "metadata": metadata,
        }
        headers = self._headers(
            session_id=session_id, origin=origin, message_id=message_id, request_id=request_id
        )
        request = self.client.build_request("POST", self.url, json=body, headers=headers)
        response: httpx.Response | None = None
        try:
            with trio.move_on_after(self.settings.n8n_timeout_seconds) as first_byte:
                response = await self.client.send(request, stream=True)
            if response is None or first_byte.cancelled_caught:
                log.warning("n8n sent no answer within %ss", self.settings.n8n_timeout_seconds)
                yield TIMEOUT
                return
            if response.status_code != 200:
                log.warning("n8n answered HTTP %s (%s)", response.status_code, _why(response))
                yield REJECTED
                return
            parser = N8nAnswerParser(response.headers.get("content-type", ""))
            # Decoded bytes: a server in front of n8n may compress regardless of Accept-Encoding.
            chunks = response.aiter_bytes().__aiter__()
            gap = self.settings.n8n_timeout_seconds
            while True:
                data: bytes | None = None
                with trio.move_on_after(gap) as waited:
                    try:
                        data = await chunks.__anext__()
                    except StopAsyncIteration:
                        data = None
                if waited.cancelled_caught:
                    log.warning("n8n stream stalled for %ss", gap)
                    yield TIMEOUT
                    return
                if data is None:
                    break
                gap = self.settings.n8n_stream_idle_seconds
                for event in parser.feed(data):
                    yield event
                    if isinstance(event, Error):
                        return
            for event in parser.close():
                yield event
            if parser.garbage_lines:
                log.info("n8n stream had %d unreadable lines (skipped)", parser.garbage_lines)
        except httpx.ConnectError:
            log.warning("n8n refused the connection")
            yield UNAVAILABLE
        except httpx.PoolTimeout:
            log.warning("all %d n8n connections busy", self.settings.n8n_max_connections)
            yield UNAVAILABLE
        except httpx.TimeoutException:
            yield TIMEOUT
        except (httpx.HTTPError, httpx.StreamError) as exc:
            log.warning("n8n stream failed: %s", type(exc).__name__)
            yield CUT
        finally:
            if response is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await response.aclose()

    async def collect_answer(self, **kwargs: Any) -> tuple[str, Error | None]:
        """The whole answer as text (for non-streaming channels)."""
        parts: list[str] = []
        async for event in self.stream_answer(**kwargs):
            if isinstance(event, Delta):
                parts.append(event.text)
            elif isinstance(event, Error):
                return "".join(parts), event
        return "".join(parts), None

    async def load_previous_session(
        self, *, session_id: str, origin: str, request_id: str
    ) -> list[tuple[str, str]]:
        """History kept by n8n (its chat memory). Anything but a readable answer is []."""
        headers = self._headers(
            session_id=session_id, origin=origin, message_id="history", request_id=request_id
        )
        headers["Accept"] = "application/json"
        body = {"action": "loadPreviousSession", "sessionId": session_id}
        try:
            with trio.move_on_after(self.settings.n8n_timeout_seconds):
                response = await self.client.post(self.url, json=body, headers=headers)
                if response.status_code != 200:
                    log.info("n8n history answered HTTP %s", response.status_code)
                    return []
                return parse_history(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.info("n8n history failed: %s", type(exc).__name__)
        return []

    async def health(self) -> dict[str, Any]:
        """Reachability of n8n, cached for `health_cache_seconds` so /health can be polled
        every second. It never calls the webhook (that would run the workflow): it asks n8n's
        own /healthz on the same host."""
        now = time.monotonic()
        if self._health and now - self._health[0] < self.settings.health_cache_seconds:
            return self._health[1]
        parts = urlsplit(self.url)
        probe = urlunsplit((parts.scheme, parts.netloc, "/healthz", "", ""))
        started = time.monotonic()
        result: dict[str, Any]
        try:
            with trio.fail_after(min(3.0, self.settings.n8n_timeout_seconds)):
                response = await self.client.get(probe)
            result = {
                "status": "ok" if response.status_code < 500 else "fail",
                "latency_ms": round((time.monotonic() - started) * 1000, 1),
            }
            if response.status_code >= 500:
                result["detail"] = f"HTTP {response.status_code}"
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            result = {"status": "fail", "detail": _describe(exc)}
        self._health = (time.monotonic(), result)
        return result


def _why(response: httpx.Response) -> str:
    if response.status_code in (401, 403):
        return "n8n refused the proxy's JWT: check the JWT Auth credential = SESSION_SECRET_KEY"
    if response.status_code == 404:
        return "webhook not found: is the workflow active and N8N_WEBHOOK_URL right?"
    return "workflow error"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    if isinstance(exc, trio.TooSlowError | httpx.TimeoutException):
        return "timed out"
    return type(exc).__name__
