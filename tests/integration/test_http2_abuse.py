"""HTTP/2 abuse against a real `python -m quartproxy --certfile/--keyfile` process with the
shipped hypercorn.toml (docs/http2.md, "Abuse bounds"). Each test floods one TLS connection with
crafted frames for a bounded count, and checks what a site owner cares about: the attacking
connection is cut (or throttled by TCP backpressure), /health keeps answering on another
connection while the flood runs, and the worker's resident memory stays under a bound.

Memory bound: RSS_BOUND_MIB over the worker's RSS before the flood. The largest thing one
connection may legitimately make the server hold is a header block of 64 CONTINUATION frames
of at most 16 KiB (h2's CONTINUATION_BACKLOG x h2_max_inbound_frame_size = 1 MiB) plus
h2_max_concurrent_streams streams with their buffers; allocator slack on top of that stays well
under 64 MiB, while each flood below would cost hundreds of MiB (or grow without end) if its
protection were missing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import hpack
import httpx
import pytest
import trio
from hyperframe.frame import (
    ContinuationFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
)

from tests.h2_support import Tls, make_tls, raw_h2
from tests.ops_support import ServerProcess, server_env, server_process
from tests.support import FakeN8n

RSS_BOUND_MIB = 64
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@pytest.fixture
def tls(tmp_path: Path) -> Tls:
    return make_tls(tmp_path)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def tls_server(tls: Tls, fake_n8n: FakeN8n) -> AsyncIterator[ServerProcess]:
    args = ["--certfile", tls.certfile, "--keyfile", tls.keyfile]
    async with server_process(server_env(fake_n8n.url), graceful=1, args=args) as server:
        yield server


@asynccontextmanager
async def attacker(url: str, tls: Tls) -> AsyncIterator[trio.SSLStream[trio.SocketStream]]:
    host, _, port = url.removeprefix("https://").rpartition(":")
    tcp = await trio.open_tcp_stream(host, int(port))
    sock = trio.SSLStream(tcp, tls.client_context(["h2"]), server_hostname=host)
    await sock.do_handshake()
    assert sock.selected_alpn_protocol() == "h2"
    # Our SETTINGS, and the ACK of the server's (sent as the connection opened): until it is
    # acknowledged, h2 applies its defaults rather than the configured limits.
    await sock.send_all(
        PREFACE + SettingsFrame(0).serialize() + SettingsFrame(0, flags=["ACK"]).serialize()
    )
    try:
        yield sock
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await sock.aclose()


def request_block(encoder: hpack.Encoder, path: str = "/health") -> bytes:
    return bytes(
        encoder.encode(
            [(":method", "GET"), (":scheme", "https"), (":authority", "127.0.0.1"), (":path", path)]
        )
    )


def header_frames(sid: int, block: bytes, size: int = 16000) -> bytes:
    """One header block as HEADERS + CONTINUATION frames, END_HEADERS on the last."""
    parts = [block[i : i + size] for i in range(0, len(block), size)] or [b""]
    frames = []
    for i, part in enumerate(parts):
        flags = ["END_HEADERS"] if i == len(parts) - 1 else []
        kind = HeadersFrame if i == 0 else ContinuationFrame
        frames.append(kind(sid, part, flags=flags).serialize())
    return b"".join(frames)


async def drain_until_closed(sock: trio.SSLStream[trio.SocketStream]) -> int:
    """Read (and drop) what the server sends until it closes; the byte count."""
    total = 0
    try:
        while data := await sock.receive_some(65536):
            total += len(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    return total


async def under_flood(
    server: ServerProcess,
    tls: Tls,
    flood: Callable[[trio.SSLStream[trio.SocketStream]], Awaitable[None]],
    *,
    cut: bool,
) -> float:
    """Run `flood` on an attacking connection while a browser-like client asks /health on
    its own connection; the worker's RSS growth (MiB). `cut`: the server must close the
    attacking connection."""
    answered: list[int] = []
    with trio.fail_after(60):
        async with (
            httpx.AsyncClient(
                base_url=server.url, http2=True, verify=tls.client_context(), timeout=20
            ) as client,
        ):
            warm = await client.get("/health")  # the worker is up and has served once
            assert warm.status_code == 200
            before = peak = rss_mib(server.proc.pid)
            async with attacker(server.url, tls) as sock, trio.open_nursery() as nursery:
                closed = trio.Event()

                async def reader() -> None:
                    await drain_until_closed(sock)
                    closed.set()

                async def attack() -> None:
                    # The server cutting us off mid-flood is the protection working.
                    with suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await flood(sock)

                nursery.start_soon(reader)
                nursery.start_soon(attack)
                for _ in range(5):  # /health answers while the flood runs
                    r = await client.get("/health")
                    answered.append(r.status_code)
                    peak = max(peak, rss_mib(server.proc.pid))
                if cut:
                    await closed.wait()
                nursery.cancel_scope.cancel()
        async with httpx.AsyncClient(
            base_url=server.url, http2=True, verify=tls.client_context(), timeout=20
        ) as fresh:  # a new connection after the flood is served too
            answered.append((await fresh.get("/health")).status_code)
    peak = max(peak, rss_mib(server.proc.pid))
    assert answered == [200] * 6
    print(f"RSS before {before:.1f} MiB, peak {peak:.1f} MiB")
    return peak - before


async def test_rapid_reset_is_cut_after_a_bounded_number_of_streams(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    """CVE-2023-44487: open a stream and reset it at once, over and over. The concurrent
    stream limit never trips; keep_alive_max_requests bounds the streams per connection."""
    sent = [0]

    async def flood(sock: trio.SSLStream[trio.SocketStream]) -> None:
        encoder = hpack.Encoder()
        sid = 1
        for _ in range(40):  # 40 x 500 = 20 000 streams offered
            batch = bytearray()
            for _ in range(500):
                batch += HeadersFrame(
                    sid, request_block(encoder), flags=["END_HEADERS", "END_STREAM"]
                ).serialize()
                batch += RstStreamFrame(sid, error_code=8).serialize()  # CANCEL
                sid += 2
            await sock.send_all(bytes(batch))
            sent[0] = (sid - 1) // 2

    async with tls_server(tls, fake_n8n) as server:
        growth = await under_flood(server, tls, flood, cut=True)
        assert sent[0] < 20000, "the server read all 20 000 resets without closing"
        assert growth < RSS_BOUND_MIB


async def test_a_continuation_flood_is_cut(tls: Tls, fake_n8n: FakeN8n) -> None:
    """A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames
    (the 2024 "CONTINUATION flood"). h2 stops at 64 frames and the connection is closed."""

    async def flood(sock: trio.SSLStream[trio.SocketStream]) -> None:
        encoder = hpack.Encoder()
        await sock.send_all(HeadersFrame(1, request_block(encoder)).serialize())
        filler = bytes(encoder.encode([("x-filler", "a" * 16000)]))
        for _ in range(20):  # up to 20 x 100 x 16 KB = 32 MB offered
            await sock.send_all(
                b"".join(ContinuationFrame(1, filler).serialize() for _ in range(100))
            )

    async with tls_server(tls, fake_n8n) as server:
        growth = await under_flood(server, tls, flood, cut=True)
        assert growth < RSS_BOUND_MIB


async def test_more_concurrent_streams_than_allowed_is_cut(tls: Tls, fake_n8n: FakeN8n) -> None:
    """Opening streams past h2_max_concurrent_streams (held open: no END_STREAM)."""

    async def flood(sock: trio.SSLStream[trio.SocketStream]) -> None:
        encoder = hpack.Encoder()
        frames = [
            HeadersFrame(1 + 2 * i, request_block(encoder), flags=["END_HEADERS"]).serialize()
            for i in range(5000)
        ]
        await sock.send_all(b"".join(frames))

    async with tls_server(tls, fake_n8n) as server:
        growth = await under_flood(server, tls, flood, cut=True)
        assert growth < RSS_BOUND_MIB


async def test_a_huge_header_list_is_refused(tls: Tls, fake_n8n: FakeN8n) -> None:
    """An HPACK bomb: one 4 KB header put in the dynamic table, then referenced thousands of
    times (a few bytes each on the wire, 4 KB each decoded)."""

    async def flood(sock: trio.SSLStream[trio.SocketStream]) -> None:
        encoder = hpack.Encoder()
        block = request_block(encoder) + bytes(encoder.encode([("x-bomb", "b" * 4000)]))
        again = bytes(encoder.encode([("x-bomb", "b" * 4000)]))  # now an index: 1-2 bytes
        block += again * 30000  # 120 MB once decoded, 45 KB on the wire
        await sock.send_all(header_frames(1, block))

    async with tls_server(tls, fake_n8n) as server:
        growth = await under_flood(server, tls, flood, cut=True)
        assert growth < RSS_BOUND_MIB


async def test_settings_and_ping_floods_stay_bounded(tls: Tls, fake_n8n: FakeN8n) -> None:
    """200 000 PINGs and 100 000 SETTINGS frames; every one asks for an ACK. Nobody reads the
    ACKs at first: TCP backpressure must stop the server from queueing them in memory."""

    async def flood(sock: trio.SSLStream[trio.SocketStream]) -> None:
        ping = PingFrame(0, opaque_data=b"12345678").serialize()
        settings = SettingsFrame(0, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535}).serialize()
        for _ in range(100):
            await sock.send_all(ping * 2000 + settings * 1000)

    async with tls_server(tls, fake_n8n) as server:
        growth = await under_flood(server, tls, flood, cut=False)
        assert growth < RSS_BOUND_MIB


async def test_a_header_list_over_the_configured_limit_is_refused(
    tls: Tls, fake_n8n: FakeN8n
) -> None:
    """hypercorn.toml's h2_max_header_list_size (16 KiB) is what is enforced, not h2's own
    64 KiB default (overrides/hypercorn_h2.py): 8 KB of headers are served, 24 KB close the
    connection with ENHANCE_YOUR_CALM."""
    async with tls_server(tls, fake_n8n) as server:
        with trio.fail_after(30):
            async with raw_h2(server.url, tls) as conn:
                sid = await conn.request("GET", "/health", {"x-big": "a" * 8000})
                await conn.streams[sid].ended.wait()
                assert conn.streams[sid].status == 200
            async with raw_h2(server.url, tls) as conn:
                sid = await conn.request("GET", "/health", {"x-big": "a" * 24000})
                await conn.closed.wait()
                assert conn.streams[sid].status == 0  # never answered
                assert conn.goaway is not None and conn.goaway.error_code == 11
