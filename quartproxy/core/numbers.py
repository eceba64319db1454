"""Numbers read from outside input (headers, query strings, settings, frames). Pure.

The one parser for every number the gateway reads from text. Python's own tools are too
lenient for input: `str.isdigit()` is true for `²` and `٣`, and `int()` then refuses `²`
(an HTTP 500 once, for `Last-Event-ID: <id>:²`) but accepts `٣`, full-width digits, `+1`,
` 1` and `1_000`; `float()` adds `nan`, `inf` and `1e309`. Here a number is ASCII digits and
nothing else. (core.http1 reads bytes, whose isdigit() is ASCII-only, and has its own regexes.)
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+", re.ASCII)
MAX_DIGITS = 18  # below 2**63 and far below the int-from-str digit limit (4300)


def parse_uint(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """`text` as a non-negative integer when it is 1 to `max_digits` ASCII digits (`0`-`9`)
    and nothing else — no sign, space, underscore, or non-ASCII digit; else None."""
    if not text or len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)


def parse_udecimal(text: str, *, max_chars: int = 32) -> float | None:
    """`text` as a non-negative decimal (`12`, `0.5`, `.5`) in ASCII digits; else None.
    No sign, exponent, `nan`, `inf`, space or underscore."""
    if not text or len(text) > max_chars or not _DECIMAL.fullmatch(text):
        return None
    return float(text)
