"""quartproxy: a secure, fast, self-hosted gateway between chat widgets and n8n workflows.

`quartproxy:app` is built on first access from the environment (and `.env`), so
`hypercorn -c hypercorn.toml quartproxy:app` works as it is. A bad setting stops the start with
one line naming it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quart_trio import QuartTrio

__all__ = ["app", "create_app"]


def app_from_environment() -> QuartTrio:
    import sys

    from .app import create_app
    from .config import ConfigError, environment, load_settings
    from .logs import setup_logging

    try:
        settings = load_settings(environment())
    except ConfigError as exc:
        print(f"quartproxy: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(settings)
    return create_app(settings)


class _AppFromEnvironment:
    """`quartproxy:app`. Hypercorn's loader evaluates the name in the module's namespace, where a
    module `__getattr__` is invisible ("application not found"), so this is a real attribute: an
    ASGI app that builds the real one from the environment on its first call (the lifespan
    startup of each worker)."""

    def __init__(self) -> None:
        self._app: QuartTrio | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = app_from_environment()
        await self._app(scope, receive, send)


app = _AppFromEnvironment()


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
