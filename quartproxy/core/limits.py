"""Rate-limit arithmetic: GCRA (generic cell rate algorithm), pure functions of (state, now).

Why GCRA and not a sliding window: its whole state is one float per key (the "theoretical
arrival time"), so every backend can decide atomically with one read-modify-write — a dict
assignment in memory, one upsert in SQLite, one small Lua script in Redis — and it gives an
exact Retry-After with no bursts at window edges.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .numbers import parse_uint

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}
# ASCII only: `\d` and `\s` alone would take `٣/minute` or a no-break space
_RATE_RE = re.compile(r"^[ \t]*([0-9]+)[ \t]*/[ \t]*([0-9]*)[ \t]*([a-z]+)[ \t]*$", re.ASCII)


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` requests per `period` seconds; a burst of up to `count` is allowed."""

    count: int
    period: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse `N/period` where period is `second|minute|hour|day`, optionally with a
        multiplier (`5/10s`, `100/15minutes`). Raises ValueError with a readable reason."""
        m = _RATE_RE.match(text.lower())
        if not m:
            raise ValueError(f"expected N/period such as 30/minute, got {text!r}")
        count, mult, unit = parse_uint(m.group(1)), parse_uint(m.group(2) or "1"), m.group(3)
        if unit not in _UNITS:
            raise ValueError(f"unknown period unit {unit!r} in {text!r}")
        if count is None or mult is None:
            raise ValueError(f"number too large in {text!r}")
        period = _UNITS[unit] * mult
        if count <= 0 or period <= 0:
            raise ValueError(f"rate must be positive, got {text!r}")
        return cls(count, period)

    @property
    def interval(self) -> float:
        """Seconds between two requests at the sustained rate."""
        return self.period / self.count

    def __str__(self) -> str:
        return f"{self.count}/{self.period:g}s"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after: float  # seconds until one more request would pass (0 when allowed)
    remaining: int  # requests still allowed right now after this one


# Unix times near 1.7e9 are spaced 2.4e-7 apart as doubles, and N same-instant hits add N
# rounded intervals: with a fixed 1e-9 the 7th of 7/hour at one instant was refused. The
# comparisons allow up to 1 ms, and never more than half an interval (so no extra request fits).
MAX_TOLERANCE = 1e-3


def tolerance(rate: Rate) -> float:
    """Seconds by which a request may be early and still pass (float rounding only)."""
    return min(MAX_TOLERANCE, rate.interval / 2)


def gcra(tat: float | None, now: float, rate: Rate) -> tuple[Decision, float | None]:
    """One GCRA step. `tat` is the stored theoretical arrival time (None: unknown key).

    Returns the decision and the new tat to store (None: leave the stored state as it is).
    A denied request does not consume capacity.
    """
    interval = rate.interval
    tol = tolerance(rate)
    burst = rate.period  # tolerance: `count` requests may arrive at once
    base = now if tat is None or tat < now else tat
    new_tat = base + interval
    allow_at = new_tat - burst
    if allow_at > now + tol:
        return Decision(False, allow_at - now, 0), None
    remaining = int((now - allow_at + tol) / interval)
    return Decision(True, 0.0, max(0, min(rate.count - 1, remaining))), new_tat
