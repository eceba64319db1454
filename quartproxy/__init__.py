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

_app: QuartTrio | None = None


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


def __getattr__(name: str) -> Any:
    global _app
    if name == "app":
        if _app is None:
            _app = app_from_environment()
        return _app
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
