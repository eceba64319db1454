"""n8n misbehaves: the visitor gets the contract's error event after what was already sent,
nothing is doubled, the workflow runs once, and the operator sees it in metrics and one log
line (no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from tests.faults.harness import (
    Gateway,
    auth,
    fake_n8n,
    gateway,
    tracebacks,
)
from tests.support import free_port

pytestmark = pytest.mark.faults

FAST = {"N8N_TIMEOUT_SECONDS": "1.5", "N8N_STREAM_IDLE_SECONDS": "1.5"}


async def history(gw: Gateway, session: dict[str, str]) -> list[tuple[str, ...]]:
    """(role, text), plus "incomplete" for an answer cut short (docs/turn-leases.md)."""
    r = await gw.http.get(f"/api/v1/chat/history/{session['session_id']}", headers=auth(session))
    assert r.status_code == 200, r.text
    return [
        (m["role"], m["text"], "incomplete") if m.get("incomplete") else (m["role"], m["text"])
        for m in r.json()["messages"]
    ]


async def replay(gw: Gateway, session: dict[str, str], message_id: str) -> list[str]:
    r = await gw.http.get(
        f"/api/v1/chat/message/{message_id}",
        headers={**auth(session), "Last-Event-ID": f"{message_id}:0"},
    )
    assert r.status_code == 200, r.text
    from tests.support import parse_sse

    return [e.event for e in parse_sse(r.text)]


@pytest.mark.parametrize(
    ("message", "code", "partial", "kind"),
    [
        ("stall", "upstream_timeout", "", "timeout"),  # no first byte in time
        ("gate:never", "upstream_timeout", "before ", "stalled"),  # stalls mid-stream
        ("die-mid", "upstream_error", "partial ", "transport"),  # dies mid-stream
        ("garbage-all", "upstream_error", "", "unreadable"),  # answers garbage
        ("error-mid", "upstream_error", "partial", "error_chunk"),  # an error chunk
        ("cut", "upstream_error", "partial", "cut"),  # the body ends without `end`
    ],
)
async def test_a_failing_answer_ends_with_the_contract_error_once(
    tmp_path: Path, message: str, code: str, partial: str, kind: str
) -> None:
    async with (
        fake_n8n() as n8n,
        gateway(
            n8n.url, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "qp.db"), **FAST
        ) as gw,
    ):
        session = await gw.session()
        with trio.fail_after(30):
            turn = await gw.turn(session, message)
        # the visitor: start, what n8n sent before the fault (once), then the error event
        assert turn.status == 200
        assert turn.events[0]["event"] == "start"
        assert turn.final["event"] == "error" and turn.final["data"]["code"] == code
        assert [e["event"] for e in turn.events].count("error") == 1
        assert turn.text == partial
        assert n8n.runs(message) == 1  # never asked twice
        # kept: the question and the part of the answer that arrived, marked incomplete, in
        # history, and the partial answer with its error in the resume buffer
        cut = [("assistant", partial, "incomplete")] if partial else []  # nothing came: none
        assert await history(gw, session) == [("user", message), *cut]
        replayed = await replay(gw, session, turn.events[0]["data"]["message_id"])
        assert replayed[-1] == "error" and replayed.count("delta") == len(
            [e for e in turn.events if e["event"] == "delta"]
        )
        # counted, and logged without a traceback
        assert await gw.metric("quartproxy_n8n_errors_total", kind=kind) == 1
        assert await gw.metric("quartproxy_chat_turns_total", outcome=code) == 1
        assert tracebacks(gw.log()) == 0
        n8n.gates["never"].set()
        n8n.gates["stall"].set()


async def test_n8n_refusing_connections_is_upstream_unavailable(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/webhook/chat"  # nothing listens there
    async with gateway(url, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "q.db")) as gw:
        session = await gw.session()
        turn = await gw.turn(session, "hello")
        assert [e["event"] for e in turn.events] == ["start", "error"]
        assert turn.final["data"]["code"] == "upstream_unavailable"
        assert await history(gw, session) == [("user", "hello")]
        assert await gw.metric("quartproxy_n8n_errors_total", kind="refused") == 1
        health = await gw.http.get("/health")
        assert health.status_code == 503 and health.json()["checks"]["n8n"]["status"] != "ok"
        assert tracebacks(gw.log()) == 0
        assert url.rsplit(":", 1)[1].split("/")[0] not in turn.final["data"]["message"]


async def test_keep_alive_closed_by_n8n_at_its_own_timer_under_load(tmp_path: Path) -> None:
    """n8n (Node) closes idle keep-alive connections after 5 s. Load in bursts separated by
    idle gaps that straddle the gateway's 4 s expiry and n8n's 5 s timer: every visitor gets
    its whole answer, every workflow runs exactly once, and no POST is re-sent."""
    async with (
        fake_n8n(keep_alive_timeout=5) as n8n,
        gateway(
            n8n.url, workers=2, DEPLOYMENT_MODE="sqlite", SQLITE_PATH=str(tmp_path / "k.db")
        ) as gw,
    ):
        sessions = [await gw.session() for _ in range(24)]
        results: dict[str, str] = {}

        async def one(session: dict[str, str], message: str) -> None:
            turn = await gw.turn(session, message)
            assert turn.status == 200, turn
            results[message] = turn.final["event"] + ":" + turn.text

        # the gaps are the fault itself (idle time on n8n's and the gateway's clocks), not a
        # synchronisation: each burst waits for all its answers
        for burst, gap in enumerate([4.6, 5.5, 4.95, 0.0]):
            async with trio.open_nursery() as nursery:
                for i, session in enumerate(sessions):
                    nursery.start_soon(one, session, f"b{burst} m{i}")
            await trio.sleep(gap)
        assert len(results) == 4 * 24
        assert all(v == f"end:echo: {k}" for k, v in results.items())
        assert all(n8n.runs(m) == 1 for m in results)
        assert len(n8n.requests) == 4 * 24
        assert await gw.metric("quartproxy_n8n_resends_total", action="refused") == 0
        assert await gw.metric("quartproxy_n8n_errors_total") == 0
