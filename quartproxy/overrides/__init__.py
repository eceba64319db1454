"""Every place quartproxy overrides a library's internals, one module per seam.

Each module names the library and the versions it was verified against, checks the installed
version when it is installed (overrides/versions.py: a protection refuses to start on an unknown
version, a saving warns loudly and is not applied), has a test that fails when the replaced code
changes (tests/unit/test_overrides.py, tests/unit/test_hypercorn_guards.py), and points at the
upstream report that would make it unnecessary (docs/upstream/):

- `hypercorn_guards.py` - Hypercorn 0.17/0.18: no h2c upgrade, ambiguous framing refused,
  WebSocket messages bounded before buffering (hypercorn-h2c-and-websocket-limits.md,
  h11-cl-te-keep-alive.md). Refuses other versions.
- `hypercorn_h2.py` - Hypercorn 0.18: HTTP/2 backpressure and buffers released on close, GOAWAY
  before an idle close, h2_max_header_list_size enforced (hypercorn-h2-*.md). Refuses.
- `hypercorn_send.py` - Hypercorn 0.17/0.18: `TCPServer.protocol_send` writes once directly
  when the kernel takes the bytes (no lock and two scheduler yields per streamed delta);
  the rest, TLS and errors go through the original (hypercorn-trio-send-fast-path.md). Warns.
- `hypercorn_body.py` - Hypercorn 0.18 + h11 0.16: a streamed HTTP/1.1 body chunk (h11 in
  chunked SEND_BODY) framed once and handed to `protocol_send`, past `Body`, `stream_send` and
  h11's state machine, which change no state for it; the rest goes through the original
  (h11-send-data-fast-path.md). Warns.
- `hypercorn_read.py` - Hypercorn 0.17/0.18: `TCPServer._read_data` on plain TCP waits with
  `wait_readable` and one read(2), keeping neither trio's receive wrappers nor the last read
  while a connection waits (≈ 3 KB per open stream; hypercorn-trio-lean-idle-read.md). Warns.
- `hypercorn_app_queue.py` - Hypercorn 0.18: `TaskGroup.spawn_app` gives an HTTP request a
  slotted `AppQueue` instead of a trio memory channel, which can call back on `http.disconnect`
  (hypercorn-trio-lean-request-queue.md). Warns, falls back.
- `quart_trio_connection.py` - quart-trio 0.12/0.13: the connection's `__call__` copied, one
  task fewer per request; its listener ends with the request body when the receive is an
  `AppQueue` (the queue's callback cancels on disconnect) (quart-trio-one-task-per-request.md).
  Warns, falls back.
- `werkzeug_headers.py` - Werkzeug 3.0/3.1: `Headers._list` lookups without an exception, a
  `__class__` swap, shared header names (werkzeug-headers-get-without-exception.md). Warns.
- `httpx_stream.py` - httpx 0.27/0.28: `is_stream_consumed` set by hand to read the transport's
  stream (httpx-raw-stream-without-generator.md). Warns, falls back.

Not overrides, but resting on how a library behaves (public extension points, each tested
through a real server; listed so an upgrade re-reads them):

- `http/keepalive.py` - an ASGI wrapper shielding the final body send, because quart-trio cancels
  the request nursery inside Hypercorn's last `send` (keep-alive timer never re-armed); before
  it, an early answer reads a small request body to its end, because Hypercorn closes the
  keep-alive connection when the answer ends before the request
  (hypercorn-early-answer-closes-keep-alive.md).
- `logs.AccessLogger` - Hypercorn's `logger_class` hook; holds back the early access line
  Hypercorn writes when a client closes right after the body (hypercorn-double-access-log.md).
- `http/h2c.py` - an ASGI wrapper reading `http_version`/`scheme` from the scope.
- `core/tokens.py` - a PyJWS with a key-caching `HMACAlgorithm` subclass, registered through
  PyJWT's public `register_algorithm` (no longer PyJWT's private `_jws`).
- `http/lean.py` - Quart's `session_interface` hook (one shared NullSession).
"""
