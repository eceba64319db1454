from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quartproxy.config import ConfigError, demo_settings, load_settings
from quartproxy.core.limits import Rate

ROOT = Path(__file__).resolve().parents[2]
GOOD = {
    "JWT_SECRET_KEY": "j" * 32,
    "SESSION_SECRET_KEY": "s" * 32,
    "N8N_WEBHOOK_URL": "https://n8n.internal/webhook/chat",
    "ALLOWED_ORIGINS": "https://shop.example.com, https://*.example.org",
}


def test_defaults() -> None:
    s = load_settings(GOOD)
    assert s.deployment_mode == "stateless"
    assert s.max_message_chars == 4000
    assert s.n8n_timeout_seconds == 60
    assert s.stream_buffer_seconds == 300
    assert s.sqlite_path == "quartproxy.db"
    assert s.rate_limit_ip == Rate(30, 60)
    assert s.log_format == "json"
    assert not s.debug and not s.demo
    assert s.allowed_origins.allows("https://a.example.org")


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY"),
        ({"SESSION_SECRET_KEY": "short"}, "SESSION_SECRET_KEY"),
        ({"SESSION_SECRET_KEY": "j" * 32}, "SESSION_SECRET_KEY"),
        ({"N8N_WEBHOOK_URL": "ftp://x"}, "N8N_WEBHOOK_URL"),
        ({"N8N_WEBHOOK_URL": ""}, "N8N_WEBHOOK_URL"),
        ({"ALLOWED_ORIGINS": ""}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "https://ok.com,not an origin"}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "https://shop.com/path"}, "ALLOWED_ORIGINS"),
        ({"DEPLOYMENT_MODE": "cluster"}, "DEPLOYMENT_MODE"),
        ({"MAX_MESSAGE_CHARS": "many"}, "MAX_MESSAGE_CHARS"),
        ({"MAX_MESSAGE_CHARS": "0"}, "MAX_MESSAGE_CHARS"),
        ({"N8N_TIMEOUT_SECONDS": "-1"}, "N8N_TIMEOUT_SECONDS"),
        ({"RATE_LIMIT_IP": "lots"}, "RATE_LIMIT_IP"),
        ({"RATE_LIMIT_SESSION": "0/minute"}, "RATE_LIMIT_SESSION"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8,nope"}, "TRUSTED_PROXIES"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"RATE_LIMIT_FAIL_MODE": "sideways"}, "RATE_LIMIT_FAIL_MODE"),
        ({"SPAM_BLOCK_PATTERNS": "(unclosed"}, "SPAM_BLOCK_PATTERNS"),
    ],
)
def test_bad_settings_name_the_variable(change: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({**GOOD, **change})
    assert e.value.variable == variable
    assert str(e.value).startswith(variable)


def test_short_secrets_allowed_in_debug_but_never_equal() -> None:
    s = load_settings({**GOOD, "DEBUG": "true", "JWT_SECRET_KEY": "a", "SESSION_SECRET_KEY": "b"})
    assert s.debug
    with pytest.raises(ConfigError):
        load_settings({**GOOD, "DEBUG": "true", "JWT_SECRET_KEY": "a", "SESSION_SECRET_KEY": "a"})


def test_secrets_not_in_repr() -> None:
    text = repr(load_settings(GOOD))
    assert "j" * 32 not in text and "s" * 32 not in text and "n8n.internal" not in text


def test_rates_parse() -> None:
    s = load_settings({**GOOD, "RATE_LIMIT_IP": "5/10s", "RATE_LIMIT_ORIGIN": "100/hour"})
    assert s.rate_limit_ip == Rate(5, 10)
    assert s.rate_limit_origin == Rate(100, 3600)


def test_demo_settings_are_only_reachable_explicitly() -> None:
    s = demo_settings(["http://127.0.0.1:8000"])
    assert s.demo
    assert s.jwt_secret_key != s.session_secret_key
    assert not load_settings(GOOD).demo


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quartproxy", *args],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_refuses_to_start_with_one_line_naming_the_variable(tmp_path: Path) -> None:
    r = run_cli(env={k: v for k, v in GOOD.items() if k != "N8N_WEBHOOK_URL"}, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "N8N_WEBHOOK_URL" in lines[0]


def test_cli_reads_dotenv_and_never_falls_into_demo(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("JWT_SECRET_KEY=" + "j" * 32 + "\nSESSION_SECRET_KEY=short\n")
    r = run_cli(env={}, cwd=tmp_path)
    assert r.returncode == 2
    assert "SESSION_SECRET_KEY" in r.stderr
    assert "DEMO" not in r.stdout + r.stderr


NUMERIC_SETTINGS = [
    "MAX_MESSAGE_CHARS",
    "MAX_BODY_BYTES",
    "N8N_MAX_CONNECTIONS",
    "BOT_SCORE_THRESHOLD",
    "MAX_METADATA_BYTES",
    "SPAM_MAX_DUPLICATES",
    "SPAM_MAX_LINKS",
    "SPAM_MAX_CHAR_RUN",
    "N8N_TIMEOUT_SECONDS",
    "N8N_STREAM_IDLE_SECONDS",
    "STREAM_BUFFER_SECONDS",
    "SESSION_TTL_SECONDS",
    "HEARTBEAT_SECONDS",
    "WS_AUTH_SECONDS",
    "HISTORY_RETENTION_DAYS",
    "SPAM_DUPLICATE_WINDOW_SECONDS",
    "RATE_LIMIT_IP",
    "RATE_LIMIT_SESSION",
    "RATE_LIMIT_ORIGIN",
    "RATE_LIMIT_SESSION_CREATE",
    "RATE_LIMIT_IPV6_PREFIX",
    "TURN_LEASE_SECONDS",
    "REDIS_FAILOVER_WAIT_SECONDS",
    "RATE_LIMIT_API_KEY",
    "API_KEY_DAILY_QUOTA",
    "IDENTITY_MAX_LIFETIME_SECONDS",
    "ATTACH_MAX_FILES",
    "ATTACH_MAX_BYTES",
    "ATTACH_MAX_TOTAL_BYTES",
    "ATTACH_SPOOL_MEMORY_BYTES",
]


@pytest.mark.parametrize("variable", NUMERIC_SETTINGS)
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e999", "NaN"])
def test_numeric_settings_refuse_non_finite_values(variable: str, value: str) -> None:
    """inf/nan used to pass (float('inf') >= any minimum) and fail later with OverflowError."""
    with pytest.raises(ConfigError) as caught:
        load_settings({**GOOD, variable: value})
    assert caught.value.variable == variable
    assert "\n" not in str(caught.value)


def test_every_numeric_setting_is_checked_for_finiteness() -> None:
    """The list above covers every int/float/Rate field of Settings (a new one must be added)."""
    import dataclasses

    from quartproxy.config import Settings

    numeric = {
        f.name.upper() for f in dataclasses.fields(Settings) if f.type in ("int", "float", "Rate")
    }
    not_from_env = {"HEALTH_CACHE_SECONDS"}  # fixed in code, not a setting
    assert numeric - not_from_env == set(NUMERIC_SETTINGS)


def test_identity_settings_are_checked_at_start(tmp_path: Path) -> None:
    short = {**GOOD, "IDENTITY_SECRETS": "long-enough-secret-0123456789abcdef,short"}
    with pytest.raises(ConfigError, match="IDENTITY_SECRETS: secret 2 must be at least 32"):
        load_settings(short)
    with pytest.raises(ConfigError, match="IDENTITY_PUBLIC_KEYS_FILE: cannot read"):
        load_settings({**GOOD, "IDENTITY_PUBLIC_KEYS_FILE": str(tmp_path / "none.pem")})
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(ConfigError, match="IDENTITY_PUBLIC_KEYS_FILE: no `-----BEGIN PUBLIC"):
        load_settings({**GOOD, "IDENTITY_PUBLIC_KEYS_FILE": str(tmp_path / "bad.pem")})
    with pytest.raises(ConfigError, match="API_KEYS: entry 2 is not"):
        load_settings({**GOOD, "API_KEYS": "a:" + "0" * 64 + ",secretkey"})
    assert "0" * 64 not in repr(load_settings({**GOOD, "API_KEYS": "a:" + "0" * 64}))
