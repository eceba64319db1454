"""The fixed label values of the gateway's metrics (metrics.py): anything outside a set is
recorded as `other`, so a label's cardinality is bounded whatever the input. The `origin` label
is bounded differently (the configured exact origins: metrics.origin_label)."""

from __future__ import annotations

OUTCOMES = frozenset(
    {
        "ok",
        "upstream_unavailable",
        "upstream_timeout",
        "upstream_error",
        "shutting_down",
        "internal",
        "store_unavailable",
        "deleted",
        "not_found",
    }
)
ERROR_CODES = frozenset(
    {
        "bad_request",
        "payload_too_large",
        "unsupported_media_type",
        "origin_not_allowed",
        "unauthorized",
        "session_mismatch",
        "forbidden",
        "rate_limited",
        "busy",
        "blocked",
        "not_found",
        "upstream_unavailable",
        "upstream_timeout",
        "upstream_error",
        "internal",
        "shutting_down",
        "store_unavailable",
    }
)
# Contract error code -> rejection reason. Codes not listed are not rejections (they are still
# counted in quartproxy_http_errors_total).
REJECTION_REASONS = {
    "origin_not_allowed": "origin",
    "rate_limited": "rate_limit",
    "busy": "busy",
    "blocked": "blocked",  # refined to bot/spam by ApiError.reason
    "bad_request": "bad_input",
    "payload_too_large": "bad_input",
    "unsupported_media_type": "bad_input",
    "unauthorized": "auth",
    "session_mismatch": "auth",
    "forbidden": "auth",
    "shutting_down": "shutting_down",
}
REASONS = frozenset(REJECTION_REASONS.values()) | {"bot", "spam"}
TIERS = frozenset(
    {
        "ip",
        "session",
        "origin",
        "session_create",
        "ws",
        "compat",
        "api_key",
        "api_quota",
        "quota_day",
        "quota_month",
    }
)
QUOTA_PERIODS = frozenset({"quota_day", "quota_month"})
N8N_ERROR_KINDS = frozenset(
    {
        "refused",
        "pool_exhausted",
        "timeout",
        "stalled",
        "http_auth",
        "http_not_found",
        "http_5xx",
        "http_other",
        "error_chunk",
        "cut",
        "empty",
        "unreadable",
        "transport",
    }
)


def bounded(value: str, allowed: frozenset[str]) -> str:
    return value if value in allowed else "other"
