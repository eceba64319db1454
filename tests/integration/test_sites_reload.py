"""SIGHUP reloads SITES_FILE in every worker of `python -m quartproxy` while an answer streams;
a bad file keeps the old sites and says why in the log."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import trio

from tests.ops_support import server_env, server_process
from tests.support import BROWSER_HEADERS, FINGERPRINT, FakeN8n, served

A = "https://a.example"
SECRET = "site-a-upstream-secret-" + "a" * 20
BOUND = 30


def sites(url: str, title: str) -> str:
    return f"""
[sites.a]
origins = ["{A}"]
webhook_url = "{url}"
upstream_secret = "{SECRET}"
[sites.a.widget]
title = "{title}"
"""


def reload_lines(result: str):  # type: ignore[no-untyped-def]
    return lambda line: line.get("event") == "sites_reload" and line.get("result") == result


async def test_sighup_reloads_every_worker_without_dropping_a_live_answer(
    tmp_path: Path,
) -> None:
    fake = FakeN8n(secret=SECRET)
    path = tmp_path / "sites.example.toml"
    async with served(fake) as n8n:
        path.write_text(sites(f"{n8n}/webhook/chat", "Old"))
        env = server_env("", SITES_FILE=str(path), ALLOWED_ORIGINS="")
        async with (
            server_process(env, workers=2) as server,
            httpx.AsyncClient(base_url=server.url, headers=BROWSER_HEADERS, timeout=BOUND) as c,
        ):
            # both workers serving (and reading the file) before it changes: a worker still
            # starting would read the new file at start and have nothing to reload
            with trio.fail_after(BOUND):
                await server.wait_log(lambda line: "Running on" in str(line.get("msg")), count=2)
            headers = {"Origin": A}
            r = await c.post(
                "/api/v1/session/create", json={"fingerprint": FINGERPRINT}, headers=headers
            )
            assert r.status_code == 201, r.text
            auth = {
                **headers,
                "Authorization": f"Bearer {r.json()['token']}",
                "X-Chat-Fingerprint": FINGERPRINT,
            }
            with trio.fail_after(BOUND):
                async with c.stream(
                    "POST", "/api/v1/chat/message", json={"message": "gate:hold"}, headers=auth
                ) as answer:
                    chunks = answer.aiter_text()
                    seen = ""
                    while "before" not in seen:
                        seen += await chunks.__anext__()
                    # the answer is streaming: now reload, twice (a good file, then a bad one)
                    path.write_text(sites(f"{n8n}/webhook/chat", "New"))
                    server.signal(signal.SIGHUP)
                    await server.wait_log(reload_lines("ok"), count=2)  # both workers
                    for _ in range(4):  # whichever worker answers
                        w = await c.get("/api/v1/sites/a/widget", headers=headers)
                        assert w.json()["title"] == "New"
                    path.write_text(sites(f"{n8n}/webhook/chat", "Bad").replace(A, "nonsense"))
                    server.signal(signal.SIGHUP)
                    refused = await server.wait_log(reload_lines("refused"), count=2)
                    assert "SITES_FILE: sites.a.origins" in refused[0]["msg"]
                    assert SECRET not in json.dumps(refused)
                    w = await c.get("/api/v1/sites/a/widget", headers=headers)
                    assert w.json()["title"] == "New"  # the old (good) registry stays
                    fake.gates["hold"].set()
                    async for text in chunks:
                        seen += text
            assert "event: end" in seen and "after" in seen  # the live answer was kept whole
            assert server.proc.returncode is None
