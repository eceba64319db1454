"""Chat over HTTP: SSE and NDJSON turns, resume, history (contract: Chat).

The channels only render: `TurnRunner` owns the turn, `render` owns the bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import trio
from quart import Blueprint, Response, jsonify, request

from .. import guard, metrics
from ..core import render
from ..core.events import TurnEvent, from_record, is_final, parse_event_id, resume_point
from ..core.messages import ChatInput
from ..errors import ApiError
from ..guard import Caller
from ..services import Services
from ..turns import Busy, EventSource, LiveTurn, TurnRequest
from .common import admit_chat, admit_read, caller, read_body, request_id, services
from .sessions import iso

bp = Blueprint("chat", __name__)

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
NDJSON_HEADERS = {
    "Content-Type": "application/x-ndjson; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}

Renderer = Callable[[TurnEvent, str, int], bytes]


async def follow(
    source: EventSource,
    message_id: str,
    after: int,
    draw: Renderer,
    heartbeat: float,
    ping: bytes | None,
    channel: str = "sse",
) -> AsyncIterator[bytes]:
    """Render a turn's events after `after` until its final event, with `ping` every
    `heartbeat` seconds of silence: for a live turn of a runner whose heartbeat runs, at its
    ticks (TurnRunner.run_heartbeat, same interval); otherwise after `heartbeat` seconds
    without an event. The yield stays outside the cancel scope (a trio rule for generators);
    a client that leaves cancels only this generator, never the turn.
    `channel` labels the open-streams gauge."""
    seq = after
    live = source if isinstance(source, LiveTurn) and source.ticked else None
    with metrics.stream_open(channel):
        while True:
            batch: list[tuple[int, TurnEvent]] = []
            if live is not None:
                batch = await live.wait_batch(seq)
            else:
                with trio.move_on_after(heartbeat):
                    batch = await source.next_batch(seq)
            if not batch:
                if ping is not None:
                    yield ping
                continue
            batch, final = until_final(batch)
            seq = batch[-1][0]
            # rendered in one expression: nothing rendered stays in this frame while it waits
            yield b"".join([draw(event, message_id, n) for n, event in batch])
            if final:
                return


def until_final(batch: list[tuple[int, TurnEvent]]) -> tuple[list[tuple[int, TurnEvent]], bool]:
    """The batch up to and including its final event, and whether it has one."""
    for i, (_, event) in enumerate(batch):
        if is_final(event):
            return batch[: i + 1], True
    return batch, False


def sse_event(event: TurnEvent, message_id: str, seq: int) -> bytes:
    return render.sse(event, message_id, seq)


def ndjson_line(event: TurnEvent, message_id: str, seq: int) -> bytes:
    return render.ndjson(event)


async def _start_turn() -> tuple[Services, str, EventSource]:
    """Admission (guard.admit_chat), the body, then open_turn."""
    svc = services()
    who = caller()
    admitted = await admit_chat(who)
    body = guard.chat_input(*(await read_body()), svc)
    turn = await open_turn(
        svc,
        who,
        admitted.origin,
        admitted.claims.session_id,
        body,
        request_id(),
        session_started=admitted.claims.issued_at,
    )
    return svc, turn.message_id, turn


async def open_turn(
    svc: Services,
    who: Caller,
    origin: str,
    session_key: str,
    body: ChatInput,
    rid: str,
    *,
    session_started: float | None,
) -> LiveTurn:
    """What comes after admission and the body — the bot and spam screen, then the turn —
    shared by every channel (SSE, NDJSON, WebSocket, @n8n/chat) so none can skip a check."""
    await guard.screen_message(
        svc,
        who,
        session_key=session_key,
        message=body.message,
        honeypot=body.honeypot,
        session_started=session_started,
    )
    if not svc.turns.accepting:
        raise ApiError(503, "shutting_down", "The server is restarting; try again in a moment.")
    req = TurnRequest(session_key, origin, body.message, body.metadata, rid)
    try:
        return await svc.turns.start(req)
    except Busy:
        raise ApiError(
            409, "busy", "An answer is still in progress for this conversation."
        ) from None


def streaming_response(body: AsyncIterator[bytes], headers: dict[str, str]) -> Response:
    response = Response(body, status=200, headers=headers)
    response.timeout = None  # never cut a long answer (RESPONSE_TIMEOUT would)
    return response


@bp.post("/api/v1/chat/message")
async def message_sse() -> Response:
    svc, message_id, source = await _start_turn()
    hb = svc.settings.heartbeat_seconds
    return streaming_response(
        follow(source, message_id, -1, sse_event, hb, render.SSE_PING), SSE_HEADERS
    )


@bp.post("/api/v1/chat/stream")
async def message_ndjson() -> Response:
    svc, message_id, source = await _start_turn()
    hb = svc.settings.heartbeat_seconds
    return streaming_response(
        follow(source, message_id, -1, ndjson_line, hb, None, "ndjson"), NDJSON_HEADERS
    )


@bp.get("/api/v1/chat/message/<message_id>")
async def resume(message_id: str) -> Response:
    svc = services()
    claims = (await admit_read(caller())).claims
    after = -1
    last = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if last:
        parsed = parse_event_id(last)
        if parsed is None or parsed[0] != message_id:
            raise ApiError(400, "bad_request", "Last-Event-ID must be `<message_id>:<n>`.")
        after = parsed[1]
    part = await svc.store.buffer_read(message_id, after, svc.clock())
    if part is not None and not part.events and after >= 0:
        # At or past the end of what is stored (a reconnect while the next event is pending,
        # or an id past the end): resume from the end (core.events.resume_point) rather than
        # wait for an event that may never come. One more read, charged to the read budget.
        part = await svc.store.buffer_read(message_id, -1, svc.clock())
        if part is not None and part.events:
            end, record = part.events[-1]
            after = resume_point(after, end, is_final(from_record(record)))
    if part is None or part.session_id != claims.session_id:
        metrics.resumed("expired")
        raise ApiError(404, "not_found", "This answer is no longer available.")
    metrics.resumed("ok")
    source = svc.turns.source(message_id)
    hb = svc.settings.heartbeat_seconds
    return streaming_response(
        follow(source, message_id, after, sse_event, hb, render.SSE_PING), SSE_HEADERS
    )


@bp.get("/api/v1/chat/history/<session_id>")
async def history(session_id: str) -> Response:
    svc = services()
    admitted = await admit_read(caller())
    origin, claims = admitted.origin, admitted.claims
    if claims.session_id != session_id:
        raise ApiError(403, "forbidden", "This is another conversation's history.")
    if svc.store.keeps_history:
        entries = await svc.store.history(session_id)
        messages = [
            {
                "message_id": e.message_id,
                "role": e.role,
                "text": e.text,
                "created_at": iso(e.created_at),
                # only on answers cut short (docs/turn-leases.md)
                **({"incomplete": True} if e.incomplete else {}),
            }
            for e in entries
        ]
    else:
        pairs = await svc.upstream.load_previous_session(
            session_id=session_id, origin=origin, request_id=request_id()
        )
        # n8n's memory keeps neither ids nor times: give stable ids by position.
        created = iso(svc.clock())
        messages = [
            {"message_id": f"{session_id}:{i}", "role": role, "text": text, "created_at": created}
            for i, (role, text) in enumerate(pairs)
        ]
    return jsonify({"session_id": session_id, "messages": messages})
