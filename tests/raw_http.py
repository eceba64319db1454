"""Raw HTTP/1.1 on a socket, for requests no HTTP client will send: `Upgrade: h2c` followed by
real HTTP/2 when the server switches (the smuggling of issue 13), Content-Length with
Transfer-Encoding, pipelining. Every read is bounded in time."""

from __future__ import annotations

from dataclasses import dataclass, field

import h2.config
import h2.connection
import h2.events
import trio

READ_SECONDS = 10


async def connect(url: str, local: str | None = None) -> trio.SocketStream:
    host, _, port = url.removeprefix("http://").rstrip("/").rpartition(":")
    return await trio.open_tcp_stream(host, int(port), local_address=local)


async def read_until_closed(stream: trio.abc.Stream) -> bytes:
    """Everything the server sends until it closes (fails after READ_SECONDS)."""
    out = bytearray()
    with trio.fail_after(READ_SECONDS):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:  # reset after the answer: what came is what counts
                break
            if not data:
                break
            out += data
    return bytes(out)


async def read_head(stream: trio.abc.Stream, buf: bytearray) -> bytes:
    """One response head (status line and headers); what follows it stays in `buf`."""
    with trio.fail_after(READ_SECONDS):
        while b"\r\n\r\n" not in buf:
            data = await stream.receive_some(65536)
            if not data:
                raise EOFError(f"closed before a response head: {bytes(buf)!r}")
            buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    buf[:] = rest
    return head


def status_of(head: bytes) -> int:
    return int(head.split(b" ", 2)[1])


@dataclass
class H2cOutcome:
    status: int  # of the upgrade request itself: 101 if the server switched
    # (status, body) of each request sent over HTTP/2 once switched; empty when not switched
    tunnelled: list[tuple[int, bytes]] = field(default_factory=list)


async def h2c_attempt(
    base_url: str,
    path: str,
    then: list[tuple[str, str, list[tuple[str, str]]]],
    *,
    local: str | None = None,
) -> H2cOutcome:
    """Ask for an h2c upgrade on `GET path`; if the server (or a proxy in front) switches, send
    each `(method, path, extra headers)` of `then` as HTTP/2 on the same connection — which is
    what an attacker does with the tunnel."""
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    settings = conn.initiate_upgrade_connection()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: chat.example.com\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        f"HTTP2-Settings: {settings.decode()}\r\n\r\n"
    ).encode()
    stream = await connect(base_url, local)
    async with stream:
        await stream.send_all(request)
        buf = bytearray()
        head = await read_head(stream, buf)
        outcome = H2cOutcome(status_of(head))
        if outcome.status != 101:
            return outcome
        await stream.send_all(conn.data_to_send())
        if buf:
            conn.receive_data(bytes(buf))
        ids = []
        for method, target, headers in then:
            sid = conn.get_next_available_stream_id()
            ids.append(sid)
            conn.send_headers(
                sid,
                [
                    (":method", method),
                    (":path", target),
                    (":scheme", "http"),
                    (":authority", "chat.example.com"),
                    *headers,
                ],
                end_stream=True,
            )
        await stream.send_all(conn.data_to_send())
        statuses: dict[int, int] = {}
        bodies: dict[int, bytearray] = {sid: bytearray() for sid in ids}
        ended: set[int] = set()
        with trio.fail_after(READ_SECONDS):
            while not ended.issuperset(ids):
                data = await stream.receive_some(65536)
                if not data:
                    break
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        statuses[event.stream_id] = int(dict(event.headers)[":status"])
                    elif isinstance(event, h2.events.DataReceived):
                        bodies.setdefault(event.stream_id, bytearray()).extend(event.data)
                        conn.acknowledge_received_data(
                            event.flow_controlled_length, event.stream_id
                        )
                    elif isinstance(event, h2.events.StreamEnded):
                        ended.add(event.stream_id)
                await stream.send_all(conn.data_to_send())
        outcome.tunnelled = [(statuses.get(sid, 0), bytes(bodies[sid])) for sid in ids]
        return outcome
