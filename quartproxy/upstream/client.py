"""The n8n client: httpx over one pooled HTTP/1.1 transport (transport.py), a fresh 30-second
JWT on every call, and the contract's error mapping. Bytes go through core.n8n_parse; callers
only ever see turn events."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterable, Callable, Sequence
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import trio

from .. import metrics
from ..config import Settings
from ..core.attachments import Attachment
from ..core.events import Delta, Error, TurnEvent
from ..core.n8n_parse import N8nAnswerParser, parse_history
from ..core.sites import Site
from ..core.tokens import upstream_token
from .answers import CUT, TIMEOUT, UNAVAILABLE, Emit, body, describe, refusal, tail
from .transport import PooledTransport
from .upload_body import upload_body

log = logging.getLogger("quartproxy.upstream")
USER_AGENT = "quartproxy"


class N8nClient:
    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        # With SITES_FILE there is no global webhook: /health probes the first site's n8n
        first = settings.sites.sites[0] if settings.sites else None
        self.url = settings.n8n_webhook_url or (first.webhook_url if first else "")
        self._url = httpx.URL(self.url)  # parsed once, not on every call
        self._site_urls: dict[str, httpx.URL] = {}  # a site's webhook, parsed once
        self._clock = clock
        # Timeouts are enforced with trio cancel scopes around each step (first byte, gap
        # between chunks) so they read as the contract states them; the transport only bounds
        # connect and the wait for a free connection (N8N_MAX_CONNECTIONS all busy).
        timeout = httpx.Timeout(
            connect=min(10.0, settings.n8n_timeout_seconds),
            read=None,
            write=30.0,
            pool=settings.n8n_timeout_seconds,
        )
        self.transport: httpx.AsyncBaseTransport = (
            transport
            if transport is not None
            else PooledTransport(
                max_connections=settings.n8n_max_connections,
                connect_timeout=timeout.connect or 10.0,
                pool_timeout=timeout.pool or settings.n8n_timeout_seconds,
            )
        )
        # Answers go straight to the transport: the AsyncClient layers (auth and redirect
        # loops, event hooks, cookie jar) cost ~3-4 % of the worker's CPU per turn and do
        # nothing for us; worse, the client's cookie jar would carry a cookie set on one
        # visitor's answer into every later request. History and health calls use the
        # AsyncClient over the same transport (and never keep cookies either, see _no_cookies).
        self.client = httpx.AsyncClient(
            transport=self.transport, timeout=timeout, follow_redirects=False, cookies=_no_cookies()
        )
        self._timeouts = {"timeout": timeout.as_dict()}
        self._health: tuple[float, dict[str, Any]] | None = None

    async def aclose(self) -> None:
        await self.client.aclose()  # closes the transport too

    def _webhook(self, site: Site | None) -> httpx.URL:
        """The webhook of `site` (None: N8N_WEBHOOK_URL)."""
        if site is None:
            return self._url
        url = self._site_urls.get(site.webhook_url)
        if url is None:
            if len(self._site_urls) >= 4096:  # reloads may change URLs; keep the cache bounded
                self._site_urls.clear()
            url = self._site_urls[site.webhook_url] = httpx.URL(site.webhook_url)
        return url

    def _headers(
        self,
        *,
        session_id: str,
        origin: str,
        message_id: str,
        request_id: str,
        user: dict[str, str] | None = None,
        files: Sequence[Attachment] = (),
        site: Site | None = None,
    ) -> dict[str, str]:
        """The request's headers with a fresh upstream JWT, signed with the site's own secret
        and algorithm (None: SESSION_SECRET_KEY and N8N_JWT_ALGORITHM)."""
        token = upstream_token(
            site.upstream_secret if site else self.settings.session_secret_key,
            session_id=session_id,
            origin=origin,
            message_id=message_id,
            now=self._clock(),
            algorithm=site.upstream_algorithm if site else self.settings.n8n_jwt_algorithm,
            user=user,
            files=[f.sha256 for f in files],
        )
        return {
            "Authorization": f"Bearer {token}",
            "Accept": "text/plain, application/json",
            "Content-Type": "application/json",
            # n8n gzips streamed answers when asked (httpx asks by default); a compressor may
            # hold back small chunks, so ask for the bytes as they are produced.
            "Accept-Encoding": "identity",
            "X-Request-ID": request_id,
            "User-Agent": USER_AGENT,
        }

    async def stream_answer(
        self,
        emit: Emit,
        *,
        session_id: str,
        origin: str,
        message_id: str,
        message: str,
        metadata: dict[str, Any],
        request_id: str,
        user: dict[str, str] | None = None,
        files: Sequence[Attachment] = (),
        site: Site | None = None,
    ) -> None:
        """Hand `emit` the deltas as n8n produces them (one list per upstream read), then at
        most one Error. No Error means the answer is whole. Never raises for upstream trouble
        (only Cancelled, and whatever `emit` raises, propagate).

        Steps: `_send` (the request, until the head or the first-byte timeout), `refusal`
        (no head, or not 200), `_pump` (the body, read by read), `tail` (what the parser
        holds at the end); `_failure` maps transport errors to the contract's codes."""
        response: httpx.Response | None = None
        closer: httpx.Response | httpx.AsyncByteStream | None = None
        try:
            response = closer = await self._send(
                session_id=session_id,
                origin=origin,
                message_id=message_id,
                message=message,
                metadata=metadata,
                request_id=request_id,
                user=user,
                files=files,
                site=site,
            )
            refused = refusal(response, self.settings.n8n_timeout_seconds)
            if refused is not None or response is None:
                await emit([refused or TIMEOUT])
                return
            parser = N8nAnswerParser(response.headers.get("content-type", ""))
            stream = body(response)
            if isinstance(stream, httpx.AsyncByteStream):
                # the transport's stream itself: closing it is what response.aclose() does, so
                # the response (its headers, ~1 KB) is not kept for as long as the answer streams
                closer, response = stream, None
            if await self._pump(stream, parser, emit):
                await tail(parser, emit)
        except (httpx.HTTPError, httpx.StreamError) as exc:
            await emit([self._failure(exc)])
        finally:
            if closer is not None:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await closer.aclose()

    async def _send(self, **call: Any) -> httpx.Response | None:
        """The sendMessage call up to the response head; None when none came within
        N8N_TIMEOUT_SECONDS. The request is built in the call, so no local keeps it (its
        headers, JWT and body) for the minutes an answer may stream; nor does the transport's
        response (~2.5 KB per open answer, bench/memory_profile.py)."""
        sent = time.perf_counter()
        with trio.move_on_after(self.settings.n8n_timeout_seconds):
            response = await self.transport.handle_async_request(self._answer_request(**call))
            metrics.n8n_response("sendMessage", time.perf_counter() - sent)
            return response
        return None

    async def _pump(
        self, chunks: AsyncIterable[bytes], parser: N8nAnswerParser, emit: Emit
    ) -> bool:
        """Feed the body to the parser and `emit` each read's events. False when the answer
        already ended here (an Error event, or the body stalled: TIMEOUT), True at the body's end.

        A callback rather than an async generator: the read loop can then stay inside one
        cancel scope for the whole answer (a generator must not yield inside one), whose
        deadline is only moved when it has drifted, instead of a new `move_on_after` per
        chunk (measured: ~7 % of the worker's CPU at 20 chunks per turn, docs/benchmarks.md).
        The gap timer fires between `idle` and `idle + slack` after the last chunk."""
        gap = self.settings.n8n_timeout_seconds  # until the first body byte
        idle = self.settings.n8n_stream_idle_seconds
        slack = min(1.0, idle / 10)
        started = False
        with trio.CancelScope(deadline=trio.current_time() + gap) as reading:
            async for data in chunks:
                now = trio.current_time()
                if not started or reading.deadline < now + idle:
                    started = True
                    reading.deadline = now + idle + slack
                events = parser.feed(data)
                if events:
                    if isinstance(events[-1], Error):
                        metrics.n8n_parse_error(events[-1].message)
                    await emit(events)
                    if isinstance(events[-1], Error):
                        return False
        if reading.cancelled_caught:
            log.warning("n8n stream stalled for %ss", idle if started else gap)
            metrics.n8n_error("stalled")
            await emit([TIMEOUT])
            return False
        return True

    def _failure(self, exc: httpx.HTTPError | httpx.StreamError) -> Error:
        """The contract's error for a failed call, logged and counted."""
        if isinstance(exc, httpx.ConnectError):
            # host:port and the reason (refused, TLS: certificate verify failed...); never the
            # webhook path, which is the secret part of N8N_WEBHOOK_URL
            log.warning("n8n refused the connection (%s)", exc)
            metrics.n8n_error("refused")
            return UNAVAILABLE
        if isinstance(exc, httpx.PoolTimeout):
            log.warning("all %d n8n connections busy", self.settings.n8n_max_connections)
            metrics.n8n_error("pool_exhausted")
            return UNAVAILABLE
        if isinstance(exc, httpx.TimeoutException):
            metrics.n8n_error("timeout")
            return TIMEOUT
        log.warning("n8n stream failed: %s", type(exc).__name__)
        metrics.n8n_error("transport")
        return CUT

    def _answer_request(
        self,
        *,
        session_id: str,
        origin: str,
        message_id: str,
        message: str,
        metadata: dict[str, Any],
        request_id: str,
        user: dict[str, str] | None = None,
        files: Sequence[Attachment] = (),
        site: Site | None = None,
    ) -> httpx.Request:
        """The sendMessage request to the site's webhook: JSON, or multipart with files
        (upload_body.py)."""
        headers = self._headers(
            session_id=session_id,
            origin=origin,
            message_id=message_id,
            request_id=request_id,
            user=user,
            files=files,
            site=site,
        )
        url = self._webhook(site)
        if files:
            stream = upload_body(session_id, message, metadata, files)
            headers["Content-Type"] = stream.content_type
            # httpx sets Host (and the length) only for a body it encodes itself
            headers["Host"] = url.netloc.decode("ascii")
            return httpx.Request(
                "POST", url, stream=stream, headers=headers, extensions=self._timeouts
            )
        body = {
            "action": "sendMessage",
            "sessionId": session_id,
            "chatInput": message,
            "metadata": metadata,
        }
        return httpx.Request(
            "POST",
            self._webhook(site),
            content=json.dumps(body, ensure_ascii=False).encode(),
            headers=headers,
            extensions=self._timeouts,
        )

    async def collect_answer(self, **kwargs: Any) -> tuple[str, Error | None]:
        """The whole answer as text (for non-streaming channels)."""
        parts: list[str] = []
        failed: list[Error] = []

        async def keep(events: list[TurnEvent]) -> None:
            for event in events:
                if isinstance(event, Delta):
                    parts.append(event.text)
                elif isinstance(event, Error):
                    failed.append(event)

        await self.stream_answer(keep, **kwargs)
        return "".join(parts), (failed[0] if failed else None)

    async def load_previous_session(
        self,
        *,
        session_id: str,
        origin: str,
        request_id: str,
        user: dict[str, str] | None = None,
        site: Site | None = None,
    ) -> list[tuple[str, str]]:
        """History kept by n8n (its chat memory), from the site's webhook. Anything but a
        readable answer is []."""
        headers = self._headers(
            session_id=session_id,
            origin=origin,
            message_id="history",
            request_id=request_id,
            user=user,
            site=site,
        )
        headers["Accept"] = "application/json"
        body = {"action": "loadPreviousSession", "sessionId": session_id}
        try:
            sent = time.perf_counter()
            with trio.move_on_after(self.settings.n8n_timeout_seconds):
                response = await self.client.post(self._webhook(site), json=body, headers=headers)
                metrics.n8n_response("loadPreviousSession", time.perf_counter() - sent)
                if response.status_code != 200:
                    log.info("n8n history answered HTTP %s", response.status_code)
                    metrics.n8n_error(metrics.n8n_status_kind(response.status_code))
                    return []
                return parse_history(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.info("n8n history failed: %s", type(exc).__name__)
            metrics.n8n_error("refused" if isinstance(exc, httpx.ConnectError) else "transport")
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
            result = {"status": "fail", "detail": describe(exc)}
        self._health = (time.monotonic(), result)
        return result


def _no_cookies() -> CookieJar:
    """A jar that never keeps anything: the client is shared by every visitor."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
