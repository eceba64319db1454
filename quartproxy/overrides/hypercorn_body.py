"""A streamed HTTP/1.1 body chunk framed once and handed to the socket write, not through 4 layers.

Libraries: Hypercorn 0.18.x and h11 0.16.x (both Python 3.11 and 3.13 install these); on any
other version this is not applied (a loud warning, Hypercorn's and h11's own code serves:
overrides/versions.py). Replaced: `hypercorn.protocol.http_stream.HTTPStream.app_send`, for one
message only - a non-empty `bytes` `http.response.body` with `more_body` true, on an HTTP/1.1
stream whose h11 connection is in SEND_BODY with a chunked writer (so not HEAD, not 204/304, not
an HTTP/1.0 client, not a Content-Length body). Everything else - the start, the last body
message, HTTP/2, WebSocket, errors - goes through the original. tests/unit/test_overrides.py
fingerprints every function whose behaviour this reproduces. Upstream proposal, ready to send:
docs/upstream/h11-send-data-fast-path.md.

Why: each delta of a streamed answer went `app_send` (a `Body` event) -> `H11Protocol.
stream_send` (an isinstance chain) -> `_send_h11_event` -> h11 `Connection.send(Data(...))` (a
frozen event, `_process_event`: a copy of the state dict, the transition tables, the fixed point
of the state-triggered transitions, the writer lookup) -> `ChunkedWriter` (3 byte strings and a
join) -> `TCPServer.protocol_send`. For a Data event in chunked SEND_BODY none of it changes any
state: the transition is SEND_BODY -> SEND_BODY, the state-triggered transitions are already at
their fixed point (every mutation of h11's `_cstate` ends by running them), keep-alive and
100-continue only look at Request/Response (and at the client's own Data), and the writer is
replaced only when `our_state`/`their_state` change. The writer itself keeps no count in chunked
mode. So the same bytes (`%x\\r\\n` + data + `\\r\\n`) are made here in one formatting and sent
with the same one `await self.send(RawData(...))`: the same awaits, so the same cancellation and
scheduling as before (the keep-alive and cancellation behaviour of the final send is untouched,
it takes the original path). Measured: docs/benchmarks.md, "A body chunk framed once".
"""

from __future__ import annotations

from typing import Any

TESTED_HYPERCORN = ("0.18.",)
TESTED_H11 = ("0.16.",)
_MARK = "_quartproxy_body_fast_path"
ORIGINALS: dict[str, Any] = {}


def install() -> bool:
    """Idempotent; called by the app factory (every worker). False when not applied."""
    import h11
    from h11._writers import ChunkedWriter
    from hypercorn.events import RawData
    from hypercorn.protocol.h11 import H11Protocol
    from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream

    from .versions import supported

    if getattr(HTTPStream.app_send, _MARK, False):
        return True
    if not (
        supported("hypercorn", TESTED_HYPERCORN, "hypercorn_body.py", required=False)
        and supported("h11", TESTED_H11, "hypercorn_body.py", required=False)
    ):
        return False
    original = ORIGINALS["HTTPStream.app_send"] = HTTPStream.app_send
    stream_send = H11Protocol.stream_send
    RESPONSE = ASGIHTTPState.RESPONSE
    SEND_BODY = h11.SEND_BODY
    Connection = h11.Connection

    async def app_send(self: Any, message: Any) -> None:
        if (
            message is not None
            and message["type"] == "http.response.body"
            and self.state is RESPONSE
            and message.get("more_body", False)
        ):
            body = message.get("body", b"")
            send = self.send
            # Hypercorn's H11Protocol.stream_send, not HTTP/2's (nor a wrapped one)
            if type(body) is bytes and body and getattr(send, "__func__", None) is stream_send:
                connection = send.__self__.connection
                if (
                    type(connection) is Connection
                    and connection.our_state is SEND_BODY
                    and type(connection._writer) is ChunkedWriter
                    # Hypercorn drops a HEAD body by the method it upper-cased; h11 frames by
                    # the method as sent (a "head" request gets a chunked writer): keep both.
                    # 204/304 get h11's Content-Length 0 writer; a 1xx leaves it in SEND_RESPONSE.
                    and self.scope["method"] != "HEAD"
                ):
                    await send.__self__.send(RawData(data=b"%x\r\n%s\r\n" % (len(body), body)))
                    return
        await original(self, message)

    setattr(app_send, _MARK, True)
    app_send.__wrapped__ = original  # type: ignore[attr-defined]
    HTTPStream.app_send = app_send  # type: ignore[method-assign]
    return True


def uninstall() -> None:
    """Hypercorn's own `app_send` back (tests compare the two on the wire)."""
    from hypercorn.protocol.http_stream import HTTPStream

    if "HTTPStream.app_send" in ORIGINALS:
        HTTPStream.app_send = ORIGINALS.pop("HTTPStream.app_send")  # type: ignore[method-assign]
