"""The one error type of the gateway: the contract's error shape,
`{"error": {"code", "message"}, "retry_after"?}`, with its HTTP status.

Pure (no framework import), so the pure rules raise it too (core.messages for bodies,
core.tokens for tokens): every refusal, from a body rule to a rate limit, is one type, rendered
by one handler in the app; no channel translates between error types."""

from __future__ import annotations

import math
from typing import Any


class ApiError(Exception):
    """An error answer. Raised anywhere in a request; rendered by one handler in the app."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
        reason: str | None = None,
        public_reason: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.headers = dict(headers or {})
        # Internal detail for metrics and logs (e.g. "bot" or "spam" for `blocked`); never sent.
        self.reason = reason
        # Sent as `error.reason`: which rule refused (e.g. "duplicate" for a `blocked` message),
        # so a client can explain the refusal in its visitor's language.
        self.public_reason = public_reason

    def body(self) -> dict[str, Any]:
        error: dict[str, str] = {"code": self.code, "message": self.message}
        if self.public_reason:
            error["reason"] = self.public_reason
        out: dict[str, Any] = {"error": error}
        if self.retry_after is not None:
            out["retry_after"] = retry_seconds(self.retry_after)
        return out

    def all_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(retry_seconds(self.retry_after))
        return headers


STORE_RETRY_AFTER = 5.0  # seconds a client is asked to wait while the store is unreachable


def store_unavailable() -> ApiError:
    """The contract's answer while the session/history store cannot be reached."""
    return ApiError(
        503,
        "store_unavailable",
        "The service is temporarily unavailable; try again shortly.",
        retry_after=STORE_RETRY_AFTER,
    )


def retry_seconds(value: float) -> int:
    """Retry-After is whole seconds; round up so a client that obeys it is let through."""
    return max(1, math.ceil(value))


# Contract codes for the HTTP statuses Quart/Werkzeug may raise on their own.
STATUS_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    401: ("unauthorized", "A valid session token is required."),
    403: ("forbidden", "This request is not allowed."),
    404: ("not_found", "Nothing here."),
    405: ("bad_request", "This method is not allowed here."),
    408: ("bad_request", "The request took too long to arrive."),
    409: ("busy", "Another answer is still in progress."),
    413: ("payload_too_large", "The request body is too large."),
    415: ("unsupported_media_type", "Send the body as application/json."),
    429: ("rate_limited", "Too many requests; try again later."),
    500: ("internal", "Something went wrong on our side."),
}


def from_status(status: int) -> ApiError:
    code, message = STATUS_CODES.get(
        status, STATUS_CODES[500] if status >= 500 else STATUS_CODES[400]
    )
    return ApiError(
        status if status in STATUS_CODES else (500 if status >= 500 else 400), code, message
    )
