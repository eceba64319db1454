"""Chat over HTTP: SSE and NDJSON turns, resume, history (contract: Chat).

The channels only render: `TurnRunner` owns the turn, `render` owns the bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from quart import Blueprint, Response, jsonify, request

from .. import metrics
from ..core import messages, render
from ..core.attachments import Attachment, close_all
from ..core.events import TurnEvent, from_record, is_final, parse_event_id, resume_point
from ..core.messages import InputLimits
from ..errors import ApiError
from ..services import Services
from ..turns import EventSource
from ..turns.channels import follow, open_turn
from . import uploads
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


def sse_event(event: TurnEvent, message_id: str, seq: int) -> bytes:
    return render.sse(event, message_id, seq)


def ndjson_line(event: TurnEvent, message_id: str, seq: int) -> bytes:
    return render.ndjson(event)


async def _start_turn() -> tuple[Services, str, EventSource]:
    """Admission (guard.admit_chat), the body, then open_turn."""
    svc = services()
    who = caller()
    admitted = await admit_chat(who)
    limits = InputLimits.from_settings(svc.settings)
    policy = uploads.policy_for(svc, admitted.origin)
    files: tuple[Attachment, ...] = ()
    if policy.enabled and uploads.is_multipart(request.headers.get("Content-Type")):
        upload = await uploads.read_upload(policy, svc.settings.max_body_bytes)
        files = tuple(upload.files)
        try:
            body = messages.chat_input(upload.message_object(), limits)
        except BaseException:
            close_all(files)
            raise
    else:  # multipart with attachments off: refused as an unsupported type, as before
        body = messages.parse_chat_body(*(await read_body()), limits)
    try:
        turn = await open_turn(
            svc,
            who,
            admitted.origin,
            admitted.claims.session_id,
            body,
            request_id(),
            session_started=admitted.claims.issued_at,
            user=admitted.claims.user,
            files=files,
            site=admitted.site,
        )
    except BaseException:
        close_all(files)  # no turn took them
        raise
    return svc, turn.message_id, turn


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
                # only on messages that carried files (docs/attachments.md): never the bytes
                **(
                    {"files": [{"name": n, "type": t, "size": s} for n, t, s in e.files]}
                    if e.files
                    else {}
                ),
            }
            for e in entries
        ]
    else:
        pairs = await svc.upstream.load_previous_session(
            session_id=session_id,
            origin=origin,
            request_id=request_id(),
            user=claims.user,
            site=admitted.site,
        )
        # n8n's memory keeps neither ids nor times: give stable ids by position.
        created = iso(svc.clock())
        messages = [
            {"message_id": f"{session_id}:{i}", "role": role, "text": text, "created_at": created}
            for i, (role, text) in enumerate(pairs)
        ]
    return jsonify({"session_id": session_id, "messages": messages})
