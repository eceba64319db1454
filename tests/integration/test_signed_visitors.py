"""Signed visitors through a real Hypercorn, in the three storage modes: a site's backend
signs the user, the gateway checks it, the conversation follows the user to a second device,
another user (or none) never sees it, n8n gets the checked claims as `verified_user` (and
only those), and an operator erases it by user id."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import jwt
import pytest

from tests.redis_server import RedisServer, redis_server  # noqa: F401 (fixture)
from tests.support import ORIGIN, FakeN8n, Proxy, parse_sse, running_proxy, settings_for

IDENTITY_SECRET = "identity-secret-of-the-site-0123456789abcdef"
OLD_IDENTITY_SECRET = "identity-secret-being-retired-0123456789ab"
Factory = Callable[..., AbstractAsyncContextManager[Proxy]]


def user_token(
    sub: str, *, secret: str = IDENTITY_SECRET, aud: str = "default", **extra: object
) -> str:
    claims = {"sub": sub, "aud": aud, "exp": int(time.time()) + 300, **extra}
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture(params=["stateless", "sqlite", "production"])
def visitors_proxy(request: pytest.FixtureRequest, fake_n8n: FakeN8n, tmp_path: Path) -> Factory:
    mode = request.param
    env: dict[str, str] = {"DEPLOYMENT_MODE": mode, "IDENTITY_SECRETS": IDENTITY_SECRET}
    if mode == "sqlite":
        env["SQLITE_PATH"] = str(tmp_path / "qp.db")
    if mode == "production":
        server: RedisServer = request.getfixturevalue("redis_server")
        env["REDIS_URL"] = server.url
    # one shared Redis: each test its own site, so no pointer of another test is found
    env["IDENTITY_AUDIENCE"] = f"site-{uuid.uuid4().hex[:12]}"

    def factory(**more: str) -> AbstractAsyncContextManager[Proxy]:
        return running_proxy(settings_for(fake_n8n.url, **{**env, **more}))

    return factory


async def create(p: Proxy, token: str | None, fingerprint: str) -> dict[str, str]:
    body = {"fingerprint": fingerprint, **({"user_token": token} if token else {})}
    r = await p.client.post("/api/v1/session/create", json=body, headers={"Origin": ORIGIN})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def say(p: Proxy, session: dict[str, str], fingerprint: str, text: str) -> list[str]:
    r = await p.client.post(
        "/api/v1/chat/message",
        json={"message": text},
        headers=p.auth(session, fingerprint=fingerprint),
    )
    assert r.status_code == 200, r.text
    return [e.data.get("text", "") for e in parse_sse(r.text) if e.event == "delta"]


async def history(p: Proxy, session: dict[str, str], fingerprint: str) -> list[str]:
    r = await p.client.get(
        f"/api/v1/chat/history/{session['session_id']}",
        headers=p.auth(session, fingerprint=fingerprint),
    )
    assert r.status_code == 200, r.text
    return [m["text"] for m in r.json()["messages"] if m["role"] == "user"]


async def test_the_conversation_follows_the_user_and_no_one_else(
    visitors_proxy: Factory, fake_n8n: FakeN8n
) -> None:
    async with visitors_proxy() as p:
        laptop = await create(p, user_token("ada", aud=p.settings.identity_audience), "laptop")
        await say(p, laptop, "laptop", "from my laptop")
        phone = await create(p, user_token("ada", aud=p.settings.identity_audience), "phone")
        assert phone["session_id"] == laptop["session_id"]  # one conversation, two devices
        bob = await create(p, user_token("bob", aud=p.settings.identity_audience), "laptop")
        anonymous = await create(p, None, "laptop")
        assert len({laptop["session_id"], bob["session_id"], anonymous["session_id"]}) == 3
        if p.services.store.keeps_history:
            assert await history(p, phone, "phone") == ["from my laptop"]
            assert await history(p, bob, "laptop") == []
            assert await history(p, anonymous, "laptop") == []
        # each device's token stays bound to its own browser
        r = await p.client.get(
            f"/api/v1/chat/history/{laptop['session_id']}",
            headers=p.auth(phone, fingerprint="laptop"),
        )
        assert r.status_code == 401
    sent = [q["body"]["sessionId"] for q in fake_n8n.requests if q["body"].get("chatInput")]
    assert sent == [laptop["session_id"]]


async def test_n8n_gets_verified_claims_and_never_unverified_ones(
    visitors_proxy: Factory, fake_n8n: FakeN8n
) -> None:
    async with visitors_proxy() as p:
        signed = await create(
            p,
            user_token(
                "ada", aud=p.settings.identity_audience, name="Ada", email="ada@example.org"
            ),
            "fp",
        )
        text = "".join(await say(p, signed, "fp", "claims"))
        assert json.loads(text)["verified_user"] == {
            "sub": "ada",
            "name": "Ada",
            "email": "ada@example.org",
        }
        r = await p.client.post(
            "/api/v1/session/create",
            json={"fingerprint": "fp2", "metadata": {"verified_user": {"sub": "root"}}},
            headers={"Origin": ORIGIN},
        )
        anonymous = dict(r.json())
        text = "".join(await say(p, anonymous, "fp2", "claims"))
        assert "verified_user" not in json.loads(text)


@pytest.mark.parametrize(
    "token",
    [
        user_token("ada", secret="an-attacker-secret-0123456789abcdefghij"),
        user_token("ada", aud="another-site"),
        jwt.encode({"sub": "ada", "aud": "default", "exp": int(time.time()) - 60}, IDENTITY_SECRET),
        "not-a-jwt",
    ],
)
async def test_a_bad_user_token_is_refused_not_made_anonymous(
    make_proxy: Factory, token: str
) -> None:
    async with make_proxy(IDENTITY_SECRETS=IDENTITY_SECRET) as p:
        r = await p.client.post(
            "/api/v1/session/create", json={"user_token": token}, headers={"Origin": ORIGIN}
        )
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert token not in r.text


async def test_user_tokens_need_a_configured_identity(make_proxy: Factory) -> None:
    async with make_proxy() as p:
        r = await p.client.post(
            "/api/v1/session/create",
            json={"user_token": user_token("ada")},
            headers={"Origin": ORIGIN},
        )
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"


async def test_rotation_accepts_the_old_and_the_new_secret(make_proxy: Factory) -> None:
    async with make_proxy(IDENTITY_SECRETS=f"{IDENTITY_SECRET},{OLD_IDENTITY_SECRET}") as p:
        a = await create(p, user_token("ada", secret=OLD_IDENTITY_SECRET), "fp")
        b = await create(p, user_token("ada"), "fp")
    assert a["session_id"] == b["session_id"]


async def test_erasure_by_user_id_ends_the_conversation_everywhere(visitors_proxy: Factory) -> None:
    async with visitors_proxy(TRUSTED_PROXIES="127.0.0.1") as p:
        laptop = await create(p, user_token("ada", aud=p.settings.identity_audience), "laptop")
        await say(p, laptop, "laptop", "forget me")
        outside = {"X-Forwarded-For": "203.0.113.9"}
        r = await p.client.post("/ops/erase-user", json={"user_id": "ada"}, headers=outside)
        assert r.status_code == 403
        r = await p.client.post("/ops/erase-user", json={"user_id": "ada"})
        assert r.json() == {"erased": True}
        r = await p.client.get(
            f"/api/v1/chat/history/{laptop['session_id']}",
            headers=p.auth(laptop, fingerprint="laptop"),
        )
        assert r.status_code == 401  # the session is gone with its history
        again = await create(p, user_token("ada", aud=p.settings.identity_audience), "laptop")
        assert again["session_id"] != laptop["session_id"]
        if p.services.store.keeps_history:
            assert await history(p, again, "laptop") == []
            await say(p, again, "laptop", "a fresh start")
            assert await history(p, again, "laptop") == ["a fresh start"]
        r = await p.client.post("/ops/erase-user", json={"user_id": "nobody"})
        assert r.json() == {"erased": False}


async def test_deleting_a_signed_session_starts_afresh(visitors_proxy: Factory) -> None:
    async with visitors_proxy() as p:
        first = await create(p, user_token("ada", aud=p.settings.identity_audience), "fp")
        await say(p, first, "fp", "hello")
        r = await p.client.delete("/api/v1/session", headers=p.auth(first, fingerprint="fp"))
        assert r.status_code == 204
        second = await create(p, user_token("ada", aud=p.settings.identity_audience), "fp")
        assert second["session_id"] != first["session_id"]
        if p.services.store.keeps_history:
            await say(p, second, "fp", "written again")
            assert await history(p, second, "fp") == ["written again"]


async def test_rs256_and_es256_tokens_with_a_public_key_file(
    make_proxy: Factory, fake_n8n: FakeN8n, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    pem = b"".join(
        k.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        for k in (rsa_key, ec_key)
    )
    (tmp_path / "keys.pem").write_bytes(pem)
    claims = {"sub": "carol", "aud": "default", "exp": int(time.time()) + 300}
    async with make_proxy(IDENTITY_PUBLIC_KEYS_FILE=str(tmp_path / "keys.pem")) as p:
        for token in (jwt.encode(claims, rsa_key, "RS256"), jwt.encode(claims, ec_key, "ES256")):
            session = await create(p, token, "fp")
            text = "".join(await say(p, session, "fp", "claims"))
            assert json.loads(text)["verified_user"] == {"sub": "carol"}
        # HS256 "signed" with the public key's text: no HS secret is configured, refused
        r = await p.client.post(
            "/api/v1/session/create",
            json={"user_token": _hs_with(pem.decode(), claims)},
            headers={"Origin": ORIGIN},
        )
        assert r.status_code == 401


def _hs_with(key: str, claims: dict[str, object]) -> str:
    import base64
    import hashlib
    import hmac

    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    head = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64(claims)
    sig = hmac.new(key.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


async def test_erasure_from_the_command_line(make_proxy: Factory, tmp_path: Path) -> None:
    """`python -m quartproxy erase-user` against the SQLite file a running gateway uses."""
    import os
    import sys

    import trio

    from tests.support import JWT_SECRET, SESSION_SECRET

    db = str(tmp_path / "qp.db")
    env = {"DEPLOYMENT_MODE": "sqlite", "SQLITE_PATH": db, "IDENTITY_SECRETS": IDENTITY_SECRET}
    async with make_proxy(**env) as p:
        session = await create(p, user_token("dora"), "fp")
        await say(p, session, "fp", "erase me")
        assert await history(p, session, "fp") == ["erase me"]
        cli_env = {
            **os.environ,
            **env,
            "JWT_SECRET_KEY": JWT_SECRET,
            "SESSION_SECRET_KEY": SESSION_SECRET,
            "N8N_WEBHOOK_URL": "http://127.0.0.1:9/webhook",
            "ALLOWED_ORIGINS": ORIGIN,
        }
        command = [sys.executable, "-m", "quartproxy", "erase-user", "dora"]
        done = await trio.run_process(
            command, env=cli_env, capture_stdout=True, capture_stderr=True, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().strip() == "erased"
        r = await p.client.get(
            f"/api/v1/chat/history/{session['session_id']}",
            headers=p.auth(session, fingerprint="fp"),
        )
        assert r.status_code == 401
        again = await create(p, user_token("dora"), "fp")
        assert again["session_id"] != session["session_id"]
        assert await history(p, again, "fp") == []
        done = await trio.run_process(
            [*command[:-1], "nobody"], env=cli_env, capture_stdout=True, check=False
        )
        assert done.stdout.decode().strip() == "nothing kept for this user"
