"""Two sites on one gateway in front of a real n8n: each site's turns run its own workflow, signed
with its own secret (n8n's JWT Auth checks it), and one site's visitors never reach the other's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import harness
from tests.support import running_proxy, settings_for, sse_turn

pytestmark = pytest.mark.e2e

A, B = "https://a.example", "https://b.example"


def sites_file(tmp_path: Path, n8n: harness.N8n, secret_b: str) -> Path:
    path = tmp_path / "sites.example.toml"
    path.write_text(
        f"""
[sites.a]
origins = ["{A}"]
webhook_url = "{n8n.webhook_url("stream")}"
upstream_secret = "{harness.SESSION_SECRET}"

[sites.b]
origins = ["{B}"]
webhook_url = "{n8n.webhook_url("json")}"
upstream_secret = "{secret_b}"
"""
    )
    return path


async def test_each_site_runs_its_own_workflow_signed_with_its_own_secret(
    n8n: harness.N8n, tmp_path: Path
) -> None:
    path = sites_file(tmp_path, n8n, harness.SESSION_SECRET)
    env = {"SITES_FILE": str(path), "N8N_WEBHOOK_URL": "", "ALLOWED_ORIGINS": ""}
    async with running_proxy(settings_for("", **env)) as p:
        sa, sb = await p.session(origin=A), await p.session(origin=B)
        on_a = await sse_turn(p, sa, "hello", origin=A)
        on_b = await sse_turn(p, sb, "hello", origin=B)
        assert on_a[-1].data["text"] == "Streaming answer to: hello. Second chunk. Third chunk."
        assert on_b[-1].data["text"] == "JSON answer to: hello"
        r = await p.client.post(  # site A's session on a page of site B
            "/api/v1/chat/message", json={"message": "x"}, headers=p.auth(sa, origin=B)
        )
        assert (r.status_code, r.json()["error"]["code"]) == (401, "session_mismatch")


async def test_a_site_whose_secret_n8n_does_not_know_is_refused_by_n8n_alone(
    n8n: harness.N8n, tmp_path: Path
) -> None:
    wrong = "site-b-secret-that-n8n-does-not-know-0123"
    path = sites_file(tmp_path, n8n, wrong)
    env = {"SITES_FILE": str(path), "N8N_WEBHOOK_URL": "", "ALLOWED_ORIGINS": ""}
    async with running_proxy(settings_for("", **env)) as p:
        sa, sb = await p.session(origin=A), await p.session(origin=B)
        on_b = await sse_turn(p, sb, "let me in", origin=B)
        assert (on_b[-1].event, on_b[-1].data["code"]) == ("error", "upstream_error")
        on_a = await sse_turn(p, sa, "hello", origin=A)  # site A signs with n8n's secret
        assert on_a[-1].event == "end"
