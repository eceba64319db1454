"""What every channel (SSE, NDJSON, WebSocket, @n8n/chat) does with a turn, whatever its
transport: `open_turn` (after admission and the body: the bot and spam screen, then the turn)
and `follow` (render a turn's events until its final one, with heartbeats). The channels in
http/ only read their transport and render bytes; none can skip a check or end a stream early.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import trio

from .. import metrics, screening
from ..core.attachments import Attachment
from ..core.events import TurnEvent, is_final
from ..core.messages import ChatInput
from ..errors import ApiError
from .live import EventSource, LiveTurn
from .runner import Busy, TurnRequest

if TYPE_CHECKING:
    from ..core.sites import Site
    from ..guard import Caller
    from ..services import Services

Renderer = Callable[[TurnEvent, str, int], bytes]


async def open_turn(
    svc: Services,
    who: Caller,
    origin: str,
    session_key: str,
    body: ChatInput,
    rid: str,
    *,
    session_started: float | None,
    user: dict[str, str] | None = None,
    files: tuple[Attachment, ...] = (),
    site: Site | None = None,
) -> LiveTurn:
    """What comes after admission and the body — the bot and spam screen, then the turn —
    shared by every channel (SSE, NDJSON, WebSocket, @n8n/chat) so none can skip a check."""
    await screening.screen_message(
        svc,
        who,
        session_key=session_key,
        message=body.message,
        honeypot=body.honeypot,
        session_started=session_started,
        site=site,
    )
    if not svc.turns.accepting:
        raise ApiError(503, "shutting_down", "The server is restarting; try again in a moment.")
    req = TurnRequest(session_key, origin, body.message, body.metadata, rid, user, files, site)
    try:
        return await svc.turns.start(req)
    except Busy:
        raise ApiError(
            409, "busy", "An answer is still in progress for this conversation."
        ) from None


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
