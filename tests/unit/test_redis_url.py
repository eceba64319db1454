"""REDIS_URL picks the topology: one Redis, a Redis Cluster, or a Sentinel-named primary."""

from __future__ import annotations

import re

import pytest

from quartproxy.config import ConfigError, load_settings
from quartproxy.core.redis_url import parse_redis_url
from quartproxy.store.redis.client import RedisKeys
from tests.support import JWT_SECRET, ORIGIN, SESSION_SECRET


@pytest.mark.parametrize(
    "url",
    ["redis://127.0.0.1:6379/0", "rediss://u:p@h:6380/1", "unix:///run/redis.sock"],
)
def test_one_redis_urls_go_to_coredis_as_given(url: str) -> None:
    target = parse_redis_url(url)
    assert (target.kind, target.url) == ("single", url)


def test_a_cluster_url_lists_seed_nodes_with_credentials_and_tls() -> None:
    t = parse_redis_url(
        "rediss+cluster://app:s%3Acret@10.0.0.1:7000,node-b,[::1]:7002"
        "?ssl_ca_certs=/etc/ca.pem&ssl_cert_reqs=required"
    )
    assert t.kind == "cluster" and t.tls
    assert t.nodes == (("10.0.0.1", 7000), ("node-b", 6379), ("::1", 7002))
    assert (t.username, t.password) == ("app", "s:cret")
    assert t.tls_options == {"ssl_ca_certs": "/etc/ca.pem", "ssl_cert_reqs": "required"}
    assert "s:cret" not in repr(t) and "s%3Acret" not in repr(t)


def test_a_sentinel_url_names_sentinels_service_db_and_sentinel_auth() -> None:
    t = parse_redis_url("redis+sentinel://:pw@s1,s2:26380,s3/mymaster/2?sentinel_password=spw")
    assert t.kind == "sentinel" and not t.tls
    assert t.nodes == (("s1", 26379), ("s2", 26380), ("s3", 26379))
    assert (t.service, t.db, t.username, t.password) == ("mymaster", 2, None, "pw")
    assert t.sentinel_auth == {"password": "spw"}


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://h", "expected redis://"),
        ("redis+cluster://", "empty host"),
        ("redis+cluster://a:1,,b:2", "empty host"),
        ("redis+cluster://h:1/0", "no path"),
        ("redis+cluster://h:0", "out of range"),
        ("redis+cluster://h:x1", "bad port"),
        ("redis+cluster://h:1?ssl_ca_certs=/ca", "rediss+cluster://"),
        ("rediss+cluster://h:1?ssl_cert_reqs=maybe", "ssl_cert_reqs"),
        ("redis+cluster://h:1?sentinel_password=x", "unknown option"),
        ("redis+sentinel://h:1", "names the service"),
        ("redis+sentinel://h:1/svc/db", "bad database"),
        ("redis+sentinel://h:1/svc/0/x", "expected /service"),
    ],
)
def test_bad_urls_say_what_is_wrong_in_one_line(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as info:
        parse_redis_url(url)
    assert "\n" not in str(info.value)


def test_settings_refuse_a_bad_redis_url_naming_the_variable_not_the_password() -> None:
    env = {
        "JWT_SECRET_KEY": JWT_SECRET,
        "SESSION_SECRET_KEY": SESSION_SECRET,
        "N8N_WEBHOOK_URL": "http://127.0.0.1:5678/webhook/x",
        "ALLOWED_ORIGINS": ORIGIN,
        "DEPLOYMENT_MODE": "production",
    }
    ok = load_settings({**env, "REDIS_URL": "redis+cluster://u:hunter2@a:7000,b:7001"})
    assert ok.redis_url.startswith("redis+cluster://")
    with pytest.raises(ConfigError) as info:
        load_settings({**env, "REDIS_URL": "redis+cluster://u:hunter2@a:7000/3"})
    assert info.value.variable == "REDIS_URL" and "hunter2" not in str(info.value)


def test_key_names_put_a_session_under_one_hash_tag() -> None:
    k = RedisKeys("qp:")
    tags = {k.s("abc", n).split("}")[0] for n in ("sess", "busy", "hist", "sbuf", "erased")}
    tags |= {k.buf("abc", "m1").split("}")[0], k.bufm("abc", "m1").split("}")[0]}
    assert tags == {"qp:{s:abc"}
    assert k.rl("ip:1").startswith("qp:{rl}:") and k.ct("dup:x").startswith("qp:{rl}:")
    with pytest.raises(ValueError, match="hash tags"):
        RedisKeys("qp{x}:")
