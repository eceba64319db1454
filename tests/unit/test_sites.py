"""core/sites.py: the registry's parsing, its one-line errors, disjoint origins, a request's
site, quotas; the example file in deploy/ loads."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartproxy.config import ConfigError, load_settings
from quartproxy.core.limits import Rate
from quartproxy.core.origins import OriginMatcher, overlap
from quartproxy.core.sites import (
    IMPLICIT_ID,
    SiteError,
    implicit_site,
    parse_registry,
    quota_reset,
)

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "JWT_SECRET_KEY": "j" * 32,
    "SESSION_SECRET_KEY": "s" * 32,
    "N8N_WEBHOOK_URL": "https://n8n.internal/webhook/chat",
    "ALLOWED_ORIGINS": "https://shop.example.com",
}
SETTINGS = load_settings(ENV)
A = (
    'origins = ["https://a.example"]\nwebhook_url = "http://n8n/a"\nupstream_secret = "'
    + "a" * 32
    + '"\n'
)
B = (
    'origins = ["https://b.example"]\nwebhook_url = "http://n8n/b"\nupstream_secret = "'
    + "b" * 32
    + '"\n'
)


def two(extra_a: str = "", extra_b: str = "") -> str:
    return f"[sites.a]\n{A}{extra_a}\n[sites.b]\n{B}{extra_b}\n"


def test_example_file_loads_through_the_setting() -> None:
    env = {**ENV, "SITES_FILE": str(ROOT / "deploy/sites.example.toml")}
    env.update({"SHOP_N8N_SECRET": "x" * 40, "DOCS_N8N_SECRET": "y" * 40})
    del env["N8N_WEBHOOK_URL"], env["ALLOWED_ORIGINS"]  # per site with a file
    reg = load_settings(env).sites
    assert reg is not None and reg.ids == ("shop", "docs")
    shop, docs = reg.by_id["shop"], reg.by_id["docs"]
    assert shop.quota_day == 5000 and shop.n8n_chat is False and docs.n8n_chat is True
    assert docs.upstream_algorithm == "HS512" and docs.upstream_secret == "y" * 40
    assert shop.widget.public()["title"] == "Shop assistant"
    assert docs.rate_limit_ip == SETTINGS.rate_limit_ip  # left out: the environment's
    assert reg.site_of("https://x.shop.example.com") == (shop, "https://x.shop.example.com")


def test_values_left_out_come_from_the_environment_and_keys_are_per_site() -> None:
    extra = 'rate_limit_ip = "5/minute"\nquota_day = 3\nrate_limit_api_key = "7/hour"\n'
    reg = parse_registry(two(extra + "api_key_daily_quota = 9\n"), SETTINGS, {})
    a, b = reg.by_id["a"], reg.by_id["b"]
    assert a.rate_limit_ip == Rate(5, 60.0) and b.rate_limit_ip == SETTINGS.rate_limit_ip
    assert (a.rate_limit_api_key, a.api_key_daily_quota) == (Rate(7, 3600.0), 9)
    assert b.rate_limit_api_key == SETTINGS.rate_limit_api_key
    assert b.api_key_daily_quota == SETTINGS.api_key_daily_quota
    assert a.key_prefix == "site:a:" and b.key_prefix == "site:b:"
    assert [k[0] for k in a.quota_keys(0.0)] == ["site:a:q:d:19700101"]
    assert b.quota_keys(0.0) == []
    assert a.webhook_url == "http://n8n/a" and "n8n/a" not in repr(a) and "aaaa" not in repr(a)


def test_the_implicit_site_is_todays_settings_with_todays_keys() -> None:
    site = implicit_site(SETTINGS)
    assert site.id == IMPLICIT_ID and site.key_prefix == "" and site.implicit
    assert site.webhook_url == SETTINGS.n8n_webhook_url
    assert site.upstream_secret == SETTINGS.session_secret_key
    assert site.quota_keys(0.0) == []


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[sites.a\n", "not valid TOML"),
        ("x = 1\n", "unknown top-level key 'x'"),
        ("", "no sites"),
        (f"[sites.A]\n{A}", "sites.A: the id must match"),
        (f"[sites.a]\n{A}typo = 1\n", "sites.a: unknown key 'typo'"),
        (
            '[sites.a]\nwebhook_url = "http://n"\nupstream_secret = "' + "a" * 32 + '"\n',
            "sites.a.origins: is required",
        ),
        (
            f"[sites.a]\n{A}".replace("http://n8n/a", "ftp://x"),
            "sites.a.webhook_url: expected an http(s) URL",
        ),
        (
            f"[sites.a]\n{A}".replace("a" * 32, "short"),
            "sites.a.upstream_secret: must be at least 32",
        ),
        (f"[sites.a]\n{A}".replace("a" * 32, "j" * 32), "must differ from JWT_SECRET_KEY"),
        (f'[sites.a]\n{A}upstream_secret_env = "X"\n', "exactly one of"),
        (
            f"[sites.a]\n{A}quota_day = -1\n",
            "sites.a.quota_day: expected a whole number of at least 0",
        ),
        (f"[sites.a]\n{A}quota_day = true\n", "sites.a.quota_day"),
        (f"[sites.a]\n{A}api_key_daily_quota = -2\n", "sites.a.api_key_daily_quota"),
        (f'[sites.a]\n{A}rate_limit_api_key = "0/minute"\n', "sites.a.rate_limit_api_key"),
        (f'[sites.a]\n{A}rate_limit_ip = "many"\n', "sites.a.rate_limit_ip: expected N/period"),
        (f'[sites.a]\n{A}upstream_algorithm = "none"\n', "sites.a.upstream_algorithm"),
        (
            f'[sites.a]\n{A}spam_block_patterns = ["("]\n',
            "sites.a.spam_block_patterns: bad pattern",
        ),
        (f'[sites.a]\n{A}bot_enforce = "yes"\n', "sites.a.bot_enforce: expected true or false"),
        (f"[sites.a]\n{A}history_retention_days = nan\n", "sites.a.history_retention_days"),
        (f'[sites.a]\n{A}[sites.a.widget]\naccent = "red"\n', "sites.a.widget.accent"),
        (f'[sites.a]\n{A}[sites.a.widget]\ntheme = "neon"\n', "sites.a.widget.theme"),
        (f'[sites.a]\n{A}[sites.a.widget]\ntitle = "{"t" * 101}"\n', "sites.a.widget.title"),
        (f'[sites.a]\n{A}[sites.a.widget]\nfont = "x"\n', "sites.a.widget: unknown key 'font'"),
        (
            two().replace("https://b.example", "https://a.example"),
            "sites.b.origins: https://a.example is also allowed by site 'a'",
        ),
        (
            two()
            .replace('"https://b.example"', '"https://*.example"')
            .replace('"https://a.example"', '"https://x.a.example"'),
            "sites.b.origins",
        ),
    ],
)
def test_bad_files_are_refused_with_one_line_naming_the_key(text: str, error: str) -> None:
    with pytest.raises(SiteError) as caught:
        parse_registry(text, SETTINGS, {})
    message = str(caught.value)
    assert error in message and "\n" not in message
    assert "a" * 32 not in message and "j" * 32 not in message  # never a secret


def test_secret_from_a_named_variable() -> None:
    text = f"[sites.a]\n{A}".replace(
        f'upstream_secret = "{"a" * 32}"', 'upstream_secret_env = "A_SECRET"'
    )
    with pytest.raises(SiteError, match="variable 'A_SECRET' is not set"):
        parse_registry(text, SETTINGS, {})
    reg = parse_registry(text, SETTINGS, {"A_SECRET": "z" * 32})
    assert reg.by_id["a"].upstream_secret == "z" * 32


def test_a_site_may_have_its_own_identity_secrets_never_echoed() -> None:
    own = "i" * 32
    reg = parse_registry(two(extra_a=f'identity_secrets = ["{own}", "{"o" * 32}"]\n'), SETTINGS, {})
    assert reg.by_id["a"].identity_secrets == (own, "o" * 32)
    assert reg.by_id["b"].identity_secrets == ()  # the environment's keys
    assert own not in repr(reg.by_id["a"])
    reg = parse_registry(
        two(extra_b='identity_secrets_env = "B_IDS"\n'), SETTINGS, {"B_IDS": f" {own} , {'p' * 32}"}
    )
    assert reg.by_id["b"].identity_secrets == (own, "p" * 32)
    for extra, error in [
        ('identity_secrets = ["short"]\n', "sites.a.identity_secrets: secret 1 must be"),
        ("identity_secrets = []\n", "sites.a.identity_secrets: expected at least one"),
        ("identity_secrets = 5\n", "sites.a.identity_secrets: expected a list"),
        ('identity_secrets_env = "NOPE"\n', "variable 'NOPE' is not set"),
        (f'identity_secrets = ["{own}"]\nidentity_secrets_env = "X"\n', "at most one of"),
    ]:
        with pytest.raises(SiteError) as caught:
            parse_registry(two(extra_a=extra), SETTINGS, {"X": own})
        assert error in str(caught.value) and own not in str(caught.value)


def test_a_site_may_have_its_own_api_keys_with_ids_unique_everywhere() -> None:
    from quartproxy.core.api_keys import new_key

    _key, entry = new_key("shopapp")
    reg = parse_registry(two(extra_a=f'api_keys = ["{entry}"]\n'), SETTINGS, {})
    assert set(reg.by_id["a"].api_keys) == {"shopapp"} and not reg.by_id["b"].api_keys
    assert reg.key_owner("shopapp") is reg.by_id["a"] and reg.key_owner("other") is None
    assert entry.split(":")[1] not in repr(reg.by_id["a"])
    clash = two(extra_a=f'api_keys = ["{entry}"]\n', extra_b=f'api_keys = ["{entry}"]\n')
    with pytest.raises(SiteError, match=r"sites\.b\.api_keys: key id 'shopapp' is already in use"):
        parse_registry(clash, SETTINGS, {})
    with_env = load_settings({**ENV, "API_KEYS": entry})
    with pytest.raises(SiteError, match="already in use"):  # an API_KEYS id too
        parse_registry(two(extra_a=f'api_keys = ["{entry}"]\n'), with_env, {})
    with pytest.raises(SiteError, match=r"sites\.a\.api_keys: entry 1 is not"):
        parse_registry(two(extra_a='api_keys = ["nope"]\n'), SETTINGS, {})


def test_the_setting_names_the_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sites.example.toml"
    path.write_text(two().replace("https://b.example", "https://a.example"))
    with pytest.raises(ConfigError) as caught:
        load_settings({**ENV, "SITES_FILE": str(path)})
    assert str(caught.value).startswith("SITES_FILE: sites.b.origins")
    with pytest.raises(ConfigError, match="SITES_FILE: cannot read"):
        load_settings({**ENV, "SITES_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="N8N_WEBHOOK_URL"):  # still required without a file
        load_settings({k: v for k, v in ENV.items() if k != "N8N_WEBHOOK_URL"})


def test_a_request_s_site_is_its_origin_s_and_a_claim_must_agree() -> None:
    reg = parse_registry(two(), SETTINGS, {})
    a, b = reg.by_id["a"], reg.by_id["b"]
    assert reg.resolve("https://a.example", None) == (a, "https://a.example")
    assert reg.resolve("https://A.example:443", "a") == (a, "https://a.example")
    assert reg.resolve("https://b.example", "b") == (b, "https://b.example")
    assert reg.resolve("https://b.example", "a") is None  # a site-B page claiming site A
    assert reg.resolve("https://a.example", "b") is None
    assert reg.resolve("https://c.example", None) is None
    assert reg.resolve(None, "a") is None


def test_quota_reset_is_the_next_utc_period() -> None:
    assert quota_reset(0.0, "quota_day") == 86400.0
    assert quota_reset(86399.5, "quota_day") == 1.0  # at least a second
    assert quota_reset(0.0, "quota_month") == 31 * 86400.0
    assert quota_reset(334 * 86400.0, "quota_month") == 31 * 86400.0  # Dec 1 -> Jan 1


_label = st.from_regex(r"[a-z]{1,4}", fullmatch=True)
_origin = st.builds(
    lambda wild, labels, port: (
        ("https://*." if wild else "https://") + ".".join(labels) + (f":{port}" if port else "")
    ),
    st.booleans(),
    st.lists(_label, min_size=1, max_size=3),
    st.sampled_from([None, 8443]),
)
_host = st.builds(
    lambda labels, port: "https://" + ".".join(labels) + (f":{port}" if port else ""),
    st.lists(_label, min_size=1, max_size=5),
    st.sampled_from([None, 8443]),
)


@given(st.lists(_origin, min_size=1, max_size=3), st.lists(_origin, min_size=1, max_size=3), _host)
def test_overlap_is_exact_disjoint_matchers_never_share_an_origin(
    xs: list[str], ys: list[str], probe: str
) -> None:
    """When `overlap` says two matchers are disjoint, no origin is allowed by both; when it
    names an exact origin, both allow it (so sites are refused exactly when they collide)."""
    a, b = OriginMatcher(xs), OriginMatcher(ys)
    shared = overlap(a, b)
    if shared is None:
        assert not (a.allows(probe) and b.allows(probe))
    elif "*" not in shared:
        assert a.allows(shared) and b.allows(shared)
    assert (shared is None) == (overlap(b, a) is None)


def test_check_config_validates_a_file_and_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    from tests.unit.test_config import run_cli

    env = {"JWT_SECRET_KEY": "j" * 32, "SESSION_SECRET_KEY": "s" * 32}
    good = tmp_path / "sites.example.toml"
    good.write_text(two())
    r = run_cli("check-config", str(good), env=env, cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, "quartproxy: configuration ok: 2 site(s): a, b")
    bad = tmp_path / "bad"
    bad.write_text(two().replace("https://b.example", "https://a.example"))
    r = run_cli("check-config", str(bad), env=env, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "quartproxy: configuration error: SITES_FILE: sites.b.origins: https://a.example is"
        " also allowed by site 'a' (sites' origins must be disjoint)"
    ]
    # serving with the bad file refuses to start, with the same line
    r = run_cli(env={**env, "SITES_FILE": str(bad)}, cwd=tmp_path)
    assert r.returncode == 2 and "SITES_FILE: sites.b.origins" in r.stderr


_site_origins = st.lists(st.lists(_origin, min_size=1, max_size=2), min_size=1, max_size=4)


@given(_site_origins, _host, st.sampled_from([None, "s0", "s1", "s2", "s3", "zz"]))
def test_an_origin_names_at_most_one_site_and_a_claim_only_confirms_it(
    groups: list[list[str]], probe: str, claim: str | None
) -> None:
    """Whatever the sites' origins: a file is accepted only when no origin is allowed by two
    sites; then `resolve` gives the one site whose origins allow the Origin, and a claimed id
    that is not that site's refuses the request."""
    text = "".join(
        f'[sites.s{i}]\norigins = {origins!r}\nwebhook_url = "http://n8n/{i}"\n'
        f'upstream_secret = "{str(i) * 32}"\n'.replace("'", '"')
        for i, origins in enumerate(groups)
    )
    try:
        reg = parse_registry(text, SETTINGS, {})
    except SiteError as exc:
        assert "must be disjoint" in str(exc)
        return
    for site in reg.sites:  # every exact origin resolves to its own site
        for origin in site.origins.exact:
            assert reg.resolve(origin, None) == (site, origin)
            assert reg.resolve(origin, "zz") is None
    owners = [s.id for s in reg.sites if s.origins.allows(probe)]
    assert len(owners) <= 1
    found = reg.resolve(probe, claim)
    if not owners or (claim is not None and claim != owners[0]):
        assert found is None
    else:
        assert found is not None and found[0].id == owners[0]


def test_site_labels_are_bounded_to_the_registry() -> None:
    from quartproxy import metrics

    metrics.configure([], ["shop"])
    assert metrics.site_label("shop") == "shop"
    assert metrics.site_label("default") == "default"
    assert metrics.site_label("x" * 40) == "other"
    assert metrics.site_label(None) == "other"
