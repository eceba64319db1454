"""HTTP/2 over TLS for the tests: a trustme CA and server certificate, the proxy served by a
real Hypercorn that terminates TLS itself, an httpx client speaking h2, and a small raw client on
the `h2` library for what httpx hides (flow-control windows, GOAWAY, crafted frames).

Waiting is on trio Events set by the raw client's reader task, never on sleeps."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import httpx
import trio
import trustme

from quartproxy.config import Settings
from tests.support import BROWSER_HEADERS, Proxy, served

HOSTS = ["127.0.0.1", "localhost"]


@dataclass
class Tls:
    ca: trustme.CA
    certfile: str
    keyfile: str
    ca_file: str

    def client_context(self, alpn: list[str] | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        context.set_alpn_protocols(alpn or ["h2", "http/1.1"])
        return context


def make_tls(directory: Path) -> Tls:
    ca = trustme.CA()
    cert = ca.issue_cert(*HOSTS)
    certfile, keyfile, ca_file = (directory / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(ca_file))
    return Tls(ca, str(certfile), str(keyfile), str(ca_file))


@dataclass
class Seen:
    """What the server saw: (client address, http_version, scheme) of every HTTP request."""

    requests: list[tuple[Any, str, str]] = field(default_factory=list)
    counted: int = 0  # response body bytes the app has handed to Hypercorn, for requests
    # carrying an `x-test-count` header

    def wrap(self, app: Any) -> Any:
        async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] in ("http", "websocket"):
                client = tuple(scope.get("client") or ())
                self.requests.append((client, scope.get("http_version", ""), scope["scheme"]))
            if not any(name == b"x-test-count" for name, _ in scope.get("headers", [])):
                await app(scope, receive, send)
                return

            async def counting(message: dict[str, Any]) -> None:
                await send(message)
                if message["type"] == "http.response.body":
                    self.counted += len(message.get("body", b""))

            await app(scope, receive, counting)

        return recording


@asynccontextmanager
async def running_tls_proxy(
    settings: Settings,
    tls: Tls,
    *,
    seen: Seen | None = None,
    limits: httpx.Limits | None = None,
    **config: Any,
) -> AsyncIterator[Proxy]:
    """The proxy served by Hypercorn with TLS (ALPN h2, http/1.1); an httpx h2 client on it."""
    from quartproxy.factory import create_app

    app = create_app(settings)
    served_app: Callable[..., Any] = seen.wrap(app) if seen else app
    async with (
        served(served_app, certfile=tls.certfile, keyfile=tls.keyfile, **config) as url,
        httpx.AsyncClient(
            base_url=url,
            http2=True,
            verify=tls.client_context(),
            timeout=30,
            headers=BROWSER_HEADERS,
            limits=limits or httpx.Limits(max_connections=1),
        ) as client,
    ):
        assert url.startswith("https://"), url
        yield Proxy(url, app, settings, client)


@dataclass
class Stream:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    ended: trio.Event = field(default_factory=trio.Event)
    reset: int | None = None
    changed: trio.Event = field(default_factory=trio.Event)

    @property
    def status(self) -> int:
        return int(self.headers.get(":status", "0"))

    @property
    def text(self) -> str:
        return self.data.decode()


class RawH2:
    """One HTTP/2 connection over TLS driven with the `h2` library. Data of streams in
    `stalled` is not acknowledged (their window stays shut: a reader that stopped reading);
    the connection-level window is always reopened, as a browser does for its other tabs."""

    def __init__(self, sock: trio.abc.Stream, window: int = 65535) -> None:
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        self.conn.local_settings = h2.settings.Settings(
            client=True, initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window}
        )
        self.streams: dict[int, Stream] = {}
        self.stalled: set[int] = set()
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.closed = trio.Event()
        self.terminated = trio.Event()
        self.pings = 0
        self.send_lock = trio.Lock()
        self.scheme = "https" if isinstance(sock, trio.SSLStream) else "http"

    async def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            async with self.send_lock:
                await self.sock.send_all(data)

    async def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> int:
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream()
        pseudo = [(":method", method), (":path", path), (":scheme", self.scheme)]
        pseudo.append((":authority", "127.0.0.1"))
        self.conn.send_headers(sid, pseudo + list(headers.items()), end_stream=not body)
        if body:
            self.conn.send_data(sid, body, end_stream=True)
        await self.flush()
        return sid

    async def connect(self, protocol: str, path: str, headers: dict[str, str]) -> int:
        """An extended CONNECT (RFC 8441): a WebSocket carried by one HTTP/2 stream."""
        sid = self.conn.get_next_available_stream_id()
        self.streams[sid] = Stream()
        pseudo = [(":method", "CONNECT"), (":protocol", protocol), (":scheme", self.scheme)]
        pseudo += [(":path", path), (":authority", "127.0.0.1")]
        self.conn.send_headers(sid, pseudo + list(headers.items()))
        await self.flush()
        return sid

    async def send(self, sid: int, data: bytes, end: bool = False) -> None:
        self.conn.send_data(sid, data, end_stream=end)
        await self.flush()

    async def open_window(self, sid: int) -> None:
        """The stalled reader reads again: acknowledge what it had received."""
        self.stalled.discard(sid)
        stream = self.streams[sid]
        if stream.data and not stream.ended.is_set():
            self.conn.increment_flow_control_window(65535, sid)
            await self.flush()

    async def read_forever(self) -> None:
        try:
            while data := await self.sock.receive_some(65536):
                for event in self.conn.receive_data(data):
                    self._on(event)
                await self.flush()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            self.closed.set()
            for stream in self.streams.values():
                stream.changed.set()

    def _on(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self.streams[event.stream_id]
            stream.headers = {str(k): str(v) for k, v in event.headers or []}
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams[event.stream_id]
            stream.data.extend(event.data or b"")
            length = event.flow_controlled_length or 0
            if not length:
                pass
            elif event.stream_id in self.stalled:
                self.conn.increment_flow_control_window(length)  # connection level only
            else:
                self.conn.acknowledge_received_data(length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.streams[event.stream_id].ended.set()
        elif isinstance(event, h2.events.StreamReset):
            stream = self.streams[event.stream_id]
            stream.reset = int(event.error_code or 0)
            stream.ended.set()
        elif isinstance(event, h2.events.PingAckReceived):
            self.pings += 1
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway = event
            self.terminated.set()
        sid = getattr(event, "stream_id", None)
        if sid in self.streams:
            self.streams[sid].changed.set()
            self.streams[sid].changed = trio.Event()

    async def wait_for(self, sid: int, needle: str) -> str:
        stream = self.streams[sid]
        while needle not in stream.text:
            if self.closed.is_set() or stream.ended.is_set():
                raise AssertionError(f"stream {sid} ended without {needle!r}: {stream.text!r}")
            await stream.changed.wait()
        return stream.text


@asynccontextmanager
async def raw_h2(url: str, tls: Tls | None, window: int = 65535) -> AsyncIterator[RawH2]:
    """Over TLS (ALPN h2) for an https URL; cleartext prior knowledge (h2c) for http."""
    host, _, port = url.split("://", 1)[1].rpartition(":")
    tcp = await trio.open_tcp_stream(host, int(port))
    sock: trio.abc.Stream = tcp
    if url.startswith("https://"):
        assert tls is not None
        sock = trio.SSLStream(tcp, tls.client_context(["h2"]), server_hostname=host)
        await sock.do_handshake()
        assert sock.selected_alpn_protocol() == "h2"
    client = RawH2(sock, window)
    client.conn.initiate_connection()
    client.conn.increment_flow_control_window(2**30)  # a big connection-level window
    await client.flush()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.read_forever)
        try:
            yield client
        finally:
            nursery.cancel_scope.cancel()
            with trio.CancelScope(shield=True):
                await sock.aclose()
