"""When to replace a dead worker, and when to stop trying: pure functions of (streak, uptime).

The rule (docs/supervision.md):
- A worker that dies (any exit the supervisor did not ask for) is replaced at once.
- A death before the worker reported itself ready (app started, services open), or within
  `settle_seconds` after that, is an *early* death (time to start does not count: it varies
  with the machine's load). Early deaths in a row form a streak: the replacement for the n-th
  one waits `first_delay * 2**(n-2)` seconds, capped at `max_delay` (0 s for the first: one
  crash of a healthy worker is replaced at once).
- A worker that stays up for `settle_seconds` after it is ready resets the streak, and so does
  any death after a longer run (a crash of a healthy worker is not a start-up problem).
- After `give_up_after` early deaths in a row the supervisor stops (exit code 1, one error
  line): the code or the settings cannot start, and a process manager with its own back-off
  and alerting is a better judge than an endless loop. `None` never gives up (DEBUG reload: a
  broken edit waits for the next change).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    settle_seconds: float = 10.0
    first_delay: float = 0.5
    max_delay: float = 30.0
    give_up_after: int | None = 6


@dataclass(frozen=True, slots=True)
class Decision:
    streak: int  # early deaths in a row, this one included; 0 when it died after a healthy run
    delay: float  # seconds before the replacement starts
    give_up: bool


def on_death(policy: RestartPolicy, streak: int, up: float | None) -> Decision:
    """What to do about a worker that died `up` seconds after it was ready (None: it never was),
    when `streak` early deaths came right before it."""
    if survived(policy, up):
        return Decision(streak=0, delay=0.0, give_up=False)
    streak += 1
    give_up = policy.give_up_after is not None and streak >= policy.give_up_after
    return Decision(streak=streak, delay=delay_for(policy, streak), give_up=give_up)


def delay_for(policy: RestartPolicy, streak: int) -> float:
    if streak <= 1:
        return 0.0
    # min() before the power would be cleaner, but 2**n overflows a float only past n ~ 1000;
    # bound the exponent so a very long streak (DEBUG, never giving up) stays finite.
    return min(policy.max_delay, policy.first_delay * 2.0 ** min(streak - 2, 64))


def survived(policy: RestartPolicy, up: float | None) -> bool:
    """A worker ready this long ago has started: a streak of early deaths is over."""
    return up is not None and up >= policy.settle_seconds
