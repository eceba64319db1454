"""The WebSocket channel (contract: `WS /api/v1/chat/ws`); frames in core/ws_protocol.py.

One socket carries any number of turns. Every message frame goes through the same admission
as an HTTP chat request, in the same order — guard.admit_chat (origin, token re-checked so a
deleted session stops here, the three rate-limit tiers), the body (core.messages.chat_input),
then turns.channels.open_turn (bot/spam screening, busy) — by calling the same functions. Turns
run in the TurnRunner's nursery: a socket that closes mid-answer only stops following; the answer is
finished, stored and resumable over HTTP with the `id` of the last frame seen.

Per connection: a reader (this handler's task), one follower task per turn, and one writer
that owns all sends and puts a `ping` frame on the wire after `HEARTBEAT_SECONDS` of silence.
"""

from __future__ import annotations

import logging

import trio
from quart import Blueprint, Response, jsonify, websocket

from .. import guard, logs, metrics
from ..core import messages, render
from ..core.events import is_final
from ..core.messages import InputLimits
from ..core.sites import Site
from ..core.ws_protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    PING_FRAME,
    PONG_FRAME,
    Auth,
    BadFrame,
    ClientFrame,
    Message,
    Ping,
    Pong,
    error_frame,
    parse_frame,
    ready_frame,
)
from ..errors import ApiError, store_unavailable
from ..guard import Caller
from ..services import Services
from ..store.base import StoreUnavailable
from ..turns import LiveTurn
from ..turns.channels import open_turn
from .common import incoming_request_id, services

log = logging.getLogger("quartproxy.ws")

bp = Blueprint("ws", __name__)

OUTBOX_FRAMES = 256  # batches of frames; a slow client holds back its followers, never the turns
CLOSE_INTERNAL = 1011
FINAL_FRAMES_SECONDS = 5.0


@bp.websocket("/api/v1/chat/ws")
async def chat_ws() -> tuple[Response, int, dict[str, str]] | None:
    svc = services()
    headers = websocket.headers
    try:
        # make_caller refuses a bad API key (401) or one sent by a page (403), at the handshake
        who = guard.make_caller(
            svc, headers, websocket.remote_addr, headers.getlist("X-Forwarded-For")
        )
        site, origin = guard.admit_site(svc, who)
        # Every handshake spends the caller's per-IP handshake budget: a script opening
        # sockets in a loop is stopped with 429 before the upgrade (guard.limit_ws_handshake).
        await guard.limit_ws_handshake(svc, who, site)
    except ApiError as err:
        # Refused at the handshake: a plain HTTP answer; the socket never opens.
        metrics.rejected(err, headers.get("Origin"))
        return jsonify(err.body()), err.status, err.all_headers()
    await websocket.accept()
    channel = WsChannel(svc, who, origin, incoming_request_id(headers), site)
    logs.bind_request_id(channel.rid)
    code = CLOSE_GOING_AWAY
    with metrics.stream_open("ws"):
        try:
            code = await channel.run()
        except Exception:
            log.exception("websocket %s failed", channel.rid)
            code = CLOSE_INTERNAL
        finally:
            # A normal end closes with its own code. Cancellation means the client has gone
            # (the close is then dropped) or the server is stopping: "going away", so clients
            # reconnect. Shielded but bounded, so a dead peer cannot hold up the shutdown.
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await websocket.close(code)
    return None


class WsChannel:
    def __init__(
        self, svc: Services, who: Caller, origin: str, rid: str, site: Site | None = None
    ) -> None:
        self.svc = svc
        self.site = site
        self.who = who
        self.origin = origin
        self.rid = rid
        self.auth: Auth | None = None
        self.session_id = ""
        self.outbox, self._outbox_rx = trio.open_memory_channel[list[str]](OUTBOX_FRAMES)

    async def run(self) -> int:
        """Serve the socket; returns the close code."""
        code = await self._authenticate()
        if code is not None:
            return code
        await websocket.send(ready_frame(self.session_id))
        result = CLOSE_GOING_AWAY
        async with trio.open_nursery() as outer:
            outer.start_soon(self._writer)
            # The outbox closes when reading ends: the writer drains it, then exits.
            async with self.outbox, trio.open_nursery() as turns:
                with trio.CancelScope() as reading:
                    turns.start_soon(self._stop_reading_on_shutdown, reading)
                    result = await self._read(turns)
                if reading.cancelled_caught:
                    # The shutdown drain has ended every answer: let the followers queue their
                    # last frames (bounded), then close with "going away".
                    result = CLOSE_GOING_AWAY
                    turns.cancel_scope.deadline = trio.current_time() + FINAL_FRAMES_SECONDS
                else:
                    turns.cancel_scope.cancel()
        return result

    async def _stop_reading_on_shutdown(self, reading: trio.CancelScope) -> None:
        await self.svc.closing.wait()
        reading.cancel()

    async def _authenticate(self) -> int | None:
        """The first frame must be a good auth frame, within WS_AUTH_SECONDS; else 4401."""
        settings = self.svc.settings
        data: str | bytes | None = None
        got = False
        with trio.move_on_after(settings.ws_auth_seconds):
            data = await websocket.receive()
            got = True
        if not got:
            return await self._refuse(
                "unauthorized",
                f"Send the auth frame within {settings.ws_auth_seconds:g} seconds.",
            )
        frame = parse_frame(data, settings.max_body_bytes)
        if not isinstance(frame, Auth):
            return await self._refuse(
                "unauthorized", 'The first frame must be {"type": "auth", "token": "..."}.'
            )
        try:
            claims = await guard.authenticate(
                self.svc, self.who, frame.token, frame.fingerprint, self.site
            )
        except ApiError as err:
            return await self._refuse(err.code, err.message, err.status)
        except (ValueError, TypeError, LookupError, RecursionError) as exc:
            # The checks are total on any string (core/tokens.py); should one still trip on
            # what a client sent, that is a refused frame (4401, one line), not a 1011 with a
            # traceback per connection.
            return await self._refuse(
                "unauthorized",
                "A valid session token is required.",
                note=f" (the check raised {type(exc).__name__})",
            )
        self.auth = frame
        self.session_id = claims.session_id
        return None

    async def _refuse(self, code: str, message: str, status: int = 401, note: str = "") -> int:
        """The first frame is refused: an error frame, then close (4401, or 1013 when the
        session store is down). One warning line, without the frame's content."""
        log.warning("websocket %s: auth refused (%s): %s%s", self.rid, code, message, note)
        metrics.rejected(ApiError(status, code, message), self.origin)
        await websocket.send(error_frame(code, message))
        return CLOSE_UNAUTHORIZED if status == 401 else CLOSE_TRY_AGAIN

    async def _read(self, turns: trio.Nursery) -> int:
        max_bytes = self.svc.settings.max_body_bytes
        while True:
            frame = parse_frame(await websocket.receive(), max_bytes)
            if isinstance(frame, Ping):
                await self.outbox.send([PONG_FRAME])
                continue
            if isinstance(frame, Pong):
                continue
            try:
                try:
                    turn = await self._admit(frame)
                except StoreUnavailable as exc:  # as the app's handler does for HTTP
                    metrics.store_error("request")
                    log.warning("store unavailable on websocket %s: %s", self.rid, exc)
                    raise store_unavailable() from None
            except ApiError as err:
                metrics.rejected(err, self.origin)
                refused = error_frame(err.code, err.message, err.retry_after, err.public_reason)
                await self.outbox.send([refused])
                if err.status == 401:  # the session ended or its token expired
                    return CLOSE_UNAUTHORIZED
                continue
            turns.start_soon(self._follow, turn)

    async def _admit(self, frame: ClientFrame) -> LiveTurn:
        """The HTTP chat path's checks, in its order, for one frame."""
        assert self.auth is not None
        svc = self.svc
        admitted = await guard.admit_chat(svc, self.who, self.auth.token, self.auth.fingerprint)
        if isinstance(frame, BadFrame):
            status = 413 if frame.code == "payload_too_large" else 400
            raise ApiError(status, frame.code, frame.message)
        if not isinstance(frame, Message):
            raise ApiError(400, "bad_request", "This socket is already authenticated.")
        body = messages.chat_input(frame.body, InputLimits.from_settings(svc.settings))
        claims = admitted.claims
        return await open_turn(
            svc,
            self.who,
            admitted.origin,
            claims.session_id,
            body,
            self.rid,
            session_started=claims.issued_at,
            user=claims.user,
            site=admitted.site,
        )

    async def _follow(self, turn: LiveTurn) -> None:
        """Queue one turn's frames until its final event."""
        seen = -1
        while True:
            batch = await turn.next_batch(seen)
            seen = batch[-1][0]
            frames: list[str] = []
            final = False
            for seq, event in batch:
                frames.append(render.ws_frame(event, turn.message_id, seq))
                if is_final(event):
                    final = True
                    break
            # one outbox item per batch (one hand-over to the writer, not one per event)
            await self.outbox.send(frames)
            if final:
                return

    async def _writer(self) -> None:
        """The only task that sends after `ready`; a ping after every silent heartbeat."""
        heartbeat = self.svc.settings.heartbeat_seconds
        while True:
            frames: list[str] | None = None
            with trio.move_on_after(heartbeat):
                try:
                    frames = await self._outbox_rx.receive()
                except trio.EndOfChannel:
                    return
            for frame in [PING_FRAME] if frames is None else frames:
                await websocket.send(frame)
