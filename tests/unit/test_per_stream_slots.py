"""The objects every open answer stream holds for its whole life (thousands per worker) carry
no per-instance dict: each is slotted (a dict of ten attributes is ~300 bytes more per stream,
bench/memory_profile.py). Red when a class loses its slots (or a subclass adds a dict back)."""

from __future__ import annotations

import socket

import pytest
import trio

from quartproxy.core.http1 import ResponseReader
from quartproxy.core.n8n_parse import N8nAnswerParser
from quartproxy.overrides.hypercorn_app_queue import AppQueue
from quartproxy.store.memory import _Buffer
from quartproxy.turns.live import LiveTurn
from quartproxy.upstream.pool import Connection


def test_per_stream_objects_have_no_instance_dict() -> None:
    a, b = socket.socketpair()
    try:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(a))
        held = [
            LiveTurn("m", "s"),
            ResponseReader(),
            N8nAnswerParser("application/x-ndjson"),
            Connection(stream, ("http", "127.0.0.1", 80)),
            _Buffer("s"),
            AppQueue(10),
        ]
        for obj in held:
            assert not hasattr(obj, "__dict__"), type(obj).__qualname__
            with pytest.raises(AttributeError):
                obj.not_an_attribute = 1  # type: ignore[attr-defined]
    finally:
        a.close()
        b.close()
