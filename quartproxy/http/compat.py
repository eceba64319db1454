"""Drop-in endpoint for the official @n8n/chat widget (contract: `POST /api/v1/n8n/chat`).

It speaks what @n8n/chat 1.x sends (read from its bundle): `sendMessage` as JSON (answer
`{"output": ...}`), `sendMessage` with `Accept: text/plain` when `enableStreaming` is on (answer:
n8n's NDJSON chunks, which the widget renders as they come), `loadPreviousSession` on opening
(answer `{"data": [LangChain messages]}`), and multipart when the visitor attaches files
(accepted when ATTACH_ENABLED, see docs/attachments.md; else 415).

There is no token. The checks are the chat path's own (guard.*, turns.channels.open_turn): origin
allowlist, the ip/session/origin limit tiers, bot and spam screening, busy. The widget's
`sessionId` is untrusted: it is validated, then only ever used through
`guard.widget_session_key(origin, sessionId)`, which keys the limits, the busy lock, the stored
history and the sessionId sent to n8n. So a visitor keeps their conversation (and n8n memory)
across visits, while a made-up id can never reach a proxy session or another site's visitor.
"""

from __future__ import annotations

import contextlib

from quart import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from .. import guard
from ..core import messages
from ..core.attachments import Attachment, close_all
from ..core.events import End, Error
from ..core.messages import ChatInput, InputLimits
from ..core.n8n_parse import langchain_message
from ..core.sites import Site
from ..errors import ApiError, from_status
from ..guard import Caller
from ..services import Services
from ..turns import LiveTurn
from ..turns.channels import follow, open_turn
from . import uploads
from .chat import NDJSON_HEADERS, ndjson_line, streaming_response
from .common import caller, read_body, request_id, services

bp = Blueprint("compat", __name__)

# What a failed turn answers in JSON mode, where the whole answer is awaited before replying.
TURN_ERROR_STATUS = {
    "upstream_unavailable": 503,
    "upstream_timeout": 504,
    "upstream_error": 502,
    "shutting_down": 503,
    "internal": 500,
}
# A blank line: a heartbeat the widget skips (it ignores lines that are only whitespace).
NDJSON_PING = b"\n"


@bp.post("/api/v1/n8n/chat")
async def n8n_chat() -> Response:
    svc = services()
    who = caller()
    site, origin = guard.admit_site(svc, who)
    if not site.n8n_chat:
        raise ApiError(404, "not_found", "This chat endpoint is not enabled for this site.")
    limits = InputLimits.from_settings(svc.settings)
    files: tuple[Attachment, ...] = ()
    upload: uploads.Upload | None = None
    if request.mimetype == "multipart/form-data":
        policy = uploads.policy_for(svc, origin)
        if not policy.enabled:
            await _discard_body()
            raise ApiError(
                415,
                "unsupported_media_type",
                "File uploads are not supported by this chat; please send text only.",
            )
        upload = await uploads.read_upload(policy, svc.settings.max_body_bytes)
        files = tuple(upload.files)
    try:
        if upload is not None:
            body = messages.n8n_chat_input(upload.message_object(), limits)
        else:
            body = messages.parse_n8n_chat_body(*(await read_body()), limits)
        key = guard.widget_session_key(origin, body.session_id)
        if body.action == "loadPreviousSession":
            close_all(files)
            return await _history(svc, who, origin, key, site)
        assert body.message is not None
        await guard.limit_message(svc, who, origin, key, site)
        chat = ChatInput(body.message, body.metadata, honeypot="")
        turn = await open_turn(
            svc, who, origin, key, chat, request_id(), session_started=None, files=files, site=site
        )
    except BaseException:
        close_all(files)  # no turn took them
        raise
    if wants_stream(request.headers.get("Accept", "")):
        hb = svc.settings.heartbeat_seconds
        return streaming_response(
            follow(turn, turn.message_id, -1, ndjson_line, hb, NDJSON_PING, "compat"),
            NDJSON_HEADERS,
        )
    return await _whole_answer(turn)


async def _discard_body() -> None:
    """Read (and drop) a body we refuse, so the answer reaches the client: a server that
    answers before the upload is read leaves the browser waiting. Capped at
    MAX_CONTENT_LENGTH like every body."""
    with contextlib.suppress(HTTPException):
        await request.get_data(cache=False)


def wants_stream(accept: str) -> bool:
    """The widget in streaming mode always sends `Accept: text/plain`; in JSON mode it sends
    no Accept of its own (browsers put `*/*`)."""
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        if media.strip().lower() == "text/plain" and "q=0" not in params.replace(" ", ""):
            return True
    return False


async def _whole_answer(turn: LiveTurn) -> Response:
    seen = -1
    while True:
        batch = await turn.next_batch(seen)
        seen = batch[-1][0]
        for _, event in batch:
            if isinstance(event, End):
                return jsonify({"output": event.text})
            if isinstance(event, Error):
                status = TURN_ERROR_STATUS.get(event.code, 502)
                raise ApiError(status, event.code, event.message)


async def _history(svc: Services, who: Caller, origin: str, key: str, site: Site) -> Response:
    """The conversation so far, in the LangChain form the widget reads; [] when unknown.
    Charged to the per-IP read budget, like every history read (in the stateless mode it
    costs an n8n call), never to the chat budget."""
    await guard.limit_read(svc, who, site)
    if svc.store.keeps_history:
        pairs = [(e.role, e.text) for e in await svc.store.history(key)]
    else:
        pairs = await svc.upstream.load_previous_session(
            session_id=key, origin=origin, request_id=request_id(), site=site
        )
    return jsonify({"data": [langchain_message(role, text) for role, text in pairs]})


@bp.errorhandler(ApiError)
async def widget_error(err: ApiError) -> tuple[Response, int, dict[str, str]]:
    """The contract's error body plus a top-level `message`: the widget shows
    `output ?? text ?? message` of any JSON answer, so the visitor reads the sentence, not
    a JSON dump."""
    body = err.body()
    body["message"] = err.message
    return jsonify(body), err.status, err.all_headers()


@bp.errorhandler(HTTPException)
async def widget_http_error(err: HTTPException) -> tuple[Response, int, dict[str, str]]:
    return await widget_error(from_status(err.code or 500))
