"""The label rules of quartproxy.metrics: bounded cardinality whatever the input."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quartproxy import metrics
from quartproxy.core.events import End, Error
from quartproxy.errors import ApiError
from tests.ops_support import parse_metrics, value


def setup_module() -> None:
    metrics.configure(["https://shop.example.com", "http://localhost:8000"])


def test_origin_label_only_for_configured_exact_origins() -> None:
    assert metrics.origin_label("https://shop.example.com") == "https://shop.example.com"
    assert metrics.origin_label("HTTPS://Shop.Example.com:443") == "https://shop.example.com"
    assert metrics.origin_label("http://localhost:8000") == "http://localhost:8000"
    assert metrics.origin_label("https://blog.example.org") == "other"
    assert metrics.origin_label("null") == "other"
    assert metrics.origin_label("") == "none"
    assert metrics.origin_label(None) == "none"


@given(st.text(max_size=300))
def test_any_origin_maps_to_a_bounded_label(origin: str) -> None:
    assert metrics.origin_label(origin) in {
        "https://shop.example.com",
        "http://localhost:8000",
        "other",
        "none",
    }


def test_outcome_of_final_events() -> None:
    assert metrics.outcome_of(End("m", "t")) == "ok"
    assert metrics.outcome_of(Error("upstream_timeout", "x")) == "upstream_timeout"
    assert metrics.outcome_of(Error("shutting_down", "x"), deleted=True) == "deleted"


def test_n8n_status_kinds() -> None:
    assert metrics.n8n_status_kind(401) == "http_auth"
    assert metrics.n8n_status_kind(403) == "http_auth"
    assert metrics.n8n_status_kind(404) == "http_not_found"
    assert metrics.n8n_status_kind(502) == "http_5xx"
    assert metrics.n8n_status_kind(422) == "http_other"


def scrape() -> dict:  # type: ignore[type-arg]
    return parse_metrics(metrics.render().decode())


def test_rejected_maps_codes_to_reasons_tiers_and_bounded_labels() -> None:
    before = scrape()
    metrics.rejected(
        ApiError(429, "rate_limited", "x", headers={"X-RateLimit-Tier": "ip"}),
        "https://shop.example.com",
    )
    metrics.rejected(
        ApiError(429, "rate_limited", "x", headers={"X-RateLimit-Tier": "weird"}), None
    )
    metrics.rejected(ApiError(403, "blocked", "x", reason="bot"), "https://shop.example.com")
    metrics.rejected(ApiError(403, "blocked", "x", reason="spam"), "https://shop.example.com")
    metrics.rejected(ApiError(403, "blocked", "x", reason="made-up"), "https://evil.example")
    metrics.rejected(ApiError(404, "not_found", "x"), "https://shop.example.com")
    metrics.rejected(ApiError(400, "some_new_code", "x"), None)
    after = scrape()

    def d(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    r = "quartproxy_rejections_total"
    shop = "https://shop.example.com"
    assert d(r, reason="rate_limit", tier="ip", origin=shop) == 1
    assert d(r, reason="rate_limit", tier="other", origin="none") == 1
    assert d(r, reason="bot", tier="", origin=shop) == 1
    assert d(r, reason="spam", tier="", origin=shop) == 1
    assert d(r, reason="other", tier="", origin="other") == 1
    # not_found is an error answer but not a rejection
    assert d("quartproxy_http_errors_total", code="not_found") == 1
    assert d("quartproxy_http_errors_total", code="other") == 1
    assert not any(
        name == r and dict(labels).get("reason") == "not_found" for name, labels in after
    )


def test_turn_timer_observes_first_token_once_and_balances_in_flight() -> None:
    before = scrape()
    timer = metrics.TurnTimer("https://shop.example.com")
    mid = scrape()
    timer.first_token()
    timer.first_token()
    timer.finish("ok")
    after = scrape()
    inflight = "quartproxy_chat_turns_in_flight"
    assert value(mid, inflight) - value(before, inflight) == 1
    assert value(after, inflight) == value(before, inflight)
    ttft = "quartproxy_chat_time_to_first_token_seconds_count"
    assert value(after, ttft) - value(before, ttft) == 1
    turns = "quartproxy_chat_turns_total"
    labels = {"outcome": "ok", "origin": "https://shop.example.com"}
    assert value(after, turns, **labels) - value(before, turns, **labels) == 1
