"""Request classes whose header lookups cost no exception, and whose header names are shared.

Library: Werkzeug, verified against 3.0.x and 3.1.x (3.1.9); on any other version the request
classes are quart-trio's own (a loud warning: overrides/versions.py). Internals used: the
`Headers._list` attribute, and a `__class__` swap of the Headers instance Quart builds.
tests/unit/test_overrides.py fingerprints `Headers.get` and `Headers.__contains__`. Upstream
proposal, ready to send: docs/upstream/werkzeug-headers-get-without-exception.md.

Werkzeug's `Headers.get` (and `in`) finds a missing header by raising and catching
`BadRequestKeyError`, an HTTPException built with its description and response machinery.
Every chat turn asks for several headers that are usually absent (X-Request-ID,
X-Forwarded-Proto, X-Chat-Fingerprint, Referer...): measured ~2 % of a worker's CPU on the
bench (docs/benchmarks.md). Same data, same class otherwise; only the lookup differs.
"""

from __future__ import annotations

from typing import Any

from quart_trio.wrappers import TrioRequest, TrioWebsocket
from werkzeug.datastructures import Headers

from .versions import supported

TESTED_VERSIONS = ("3.0.", "3.1.")


class FastHeaders(Headers):
    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:  # type: ignore[override]
        if type is not None or not isinstance(key, str):
            return super().get(key, default, type)
        ikey = key.lower()
        for k, v in self._list:
            if k.lower() == ikey:
                return v
        return default

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return super().__contains__(key)  # type: ignore[operator]
        ikey = key.lower()
        return any(k.lower() == ikey for k, _ in self._list)


# Quart decodes every request header name into a new str (`name.decode().title()`), and an
# answer stream keeps its request (so these names) for as long as it is open. The names a
# worker sees are few: the first copy of each is kept and shared (values are never shared).
MAX_SHARED_NAMES = 512  # a bound against clients inventing names; beyond it names stay as they are
# Per process, not per app, on purpose: interned header names are the same strings for every app
# of the process (tests build many), and one copy per process is the saving; bounded above.
_names: dict[str, str] = {}


def share_names(headers: Headers) -> None:
    """Replace each header name by the first equal name seen (same order, same values)."""
    items = headers._list
    for i, (name, value) in enumerate(items):
        shared = _names.get(name)
        if shared is None:
            if len(_names) < MAX_SHARED_NAMES:
                _names[name] = name
        elif shared is not name:
            items[i] = (shared, value)


class Request(TrioRequest):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if type(self.headers) is Headers:
            self.headers.__class__ = FastHeaders
            share_names(self.headers)


class Websocket(TrioWebsocket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if type(self.headers) is Headers:
            self.headers.__class__ = FastHeaders
            share_names(self.headers)


def request_classes() -> tuple[type[TrioRequest], type[TrioWebsocket]]:
    """The classes for `app.request_class` / `app.websocket_class`: these on a verified
    Werkzeug, else quart-trio's own."""
    if supported("werkzeug", TESTED_VERSIONS, "werkzeug_headers.py", required=False):
        return Request, Websocket
    return TrioRequest, TrioWebsocket
