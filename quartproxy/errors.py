"""The contract's codes for the statuses Quart/Werkzeug raise on their own. The error type
itself is core.errors.ApiError (re-exported here)."""

from __future__ import annotations

from .core.errors import ApiError as ApiError
from .core.errors import retry_seconds as retry_seconds

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
