"""The version check every override runs when it is installed (overrides/__init__.py lists them).

An override replaces or copies code of a library, read at the versions it names. On any other
version it is not trusted: an override that protects (Hypercorn guards, HTTP/2 fixes) refuses to
start the app; one that only saves memory or CPU warns loudly once and is not applied, so the
library's own code serves (slower, never wrong). tests/unit/test_overrides.py and
test_hypercorn_guards.py fail when the replaced code changes, even within a tested version line.
"""

from __future__ import annotations

import logging
from importlib.metadata import version

log = logging.getLogger("quartproxy.overrides")

_warned: set[str] = set()


def supported(library: str, tested: tuple[str, ...], where: str, *, required: bool) -> bool:
    """Whether the installed `library` is one of the `tested` version prefixes. If not:
    RuntimeError when `required`, else one WARNING per override and False."""
    found = version(library)
    if found.startswith(tested):
        return True
    message = (
        f"quartproxy/overrides/{where} replaces {library} internals and was verified against "
        f"{library} {', '.join(v + 'x' for v in tested)}; found {found}. Re-read the replaced "
        "code (tests/unit/test_overrides.py names it), then update the override and its versions."
    )
    if required:
        raise RuntimeError(message)
    if where not in _warned:
        _warned.add(where)
        log.warning("%s Not applied: %s's own code serves instead.", message, library)
    return False
