"""The upstream pool is sharded so httpcore's per-request bookkeeping stays small."""

from __future__ import annotations

from quartproxy.upstream import N8nClient, pool_shards
from tests.support import settings_for


def test_shards_are_bounded_and_never_zero() -> None:
    assert pool_shards(1) == 1
    assert pool_shards(7) == 1
    assert pool_shards(100) == 12
    assert pool_shards(1000) == 32
    assert pool_shards(10**6) == 32


async def test_requests_rotate_over_shards_and_capacity_is_kept() -> None:
    settings = settings_for("http://127.0.0.1:9/webhook", N8N_MAX_CONNECTIONS="100")
    client = N8nClient(settings)
    try:
        assert len(client.clients) == 12
        picked = [client._pick() for _ in range(24)]
        assert {id(c) for c in picked} == {id(c) for c in client.clients}
        per_shard = client.clients[0]._transport._pool._max_connections  # type: ignore[attr-defined]
        assert per_shard * len(client.clients) >= 100
    finally:
        await client.aclose()
