"""quartproxy: a secure, fast, self-hosted gateway between chat widgets and n8n workflows.

`quartproxy:app` is an ASGI app built on its first call (Hypercorn's lifespan start-up) from the
environment and `.env`, so `hypercorn -c hypercorn.toml quartproxy:app` works as it is, while
importing the package (tests, tools) needs no settings. A bad setting stops the start with one
line naming it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quart_trio import QuartTrio

__all__ = ["app", "app_from_environment"]


def app_from_environment() -> QuartTrio:
    from .config import ConfigError, environment, load_settings
    from .factory import create_app
    from .logs import setup_logging

    try:
        settings = load_settings(environment())
    except ConfigError as exc:
        print(f"quartproxy: configuration error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    setup_logging(settings)
    return create_app(settings)


class _LazyApp:
    """An ASGI callable standing in for the real app until its first call. Hypercorn looks the
    app up with eval() over the module's namespace, so a module-level __getattr__ is never
    consulted: the attribute has to exist."""

    def __init__(self) -> None:
        self._app: QuartTrio | None = None

    def load(self) -> QuartTrio:
        if self._app is None:
            self._app = app_from_environment()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.load()(scope, receive, send)


# The factory lives in `quartproxy.factory`, not in a submodule named `app`: importing such a
# submodule would rebind this attribute to the module (tests/unit/test_factory_import.py).
app = _LazyApp()
