"""`python -m quartproxy [serve] [--bind HOST:PORT] [--workers N]` runs the gateway exactly as
`hypercorn -c hypercorn.toml quartproxy:app` does; `python -m quartproxy demo` starts a
self-contained demo with no n8n and no configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def hypercorn_config(bind: list[str] | None, workers: int | None):  # type: ignore[no-untyped-def]
    from hypercorn.config import Config

    toml = Path("hypercorn.toml")
    if not toml.is_file():
        toml = ROOT / "hypercorn.toml"
    config = Config.from_toml(str(toml)) if toml.is_file() else Config()
    config.worker_class = "trio"
    if bind:
        config.bind = bind
    if workers:
        config.workers = workers
    return config


def serve(args: argparse.Namespace) -> int:
    from hypercorn.run import run

    from .config import ConfigError, environment, load_settings

    try:
        load_settings(environment())  # fail fast, with one line, before workers spawn
    except ConfigError as exc:
        print(f"quartproxy: configuration error: {exc}", file=sys.stderr)
        return 2
    config = hypercorn_config(args.bind, args.workers)
    config.application_path = "quartproxy:app"
    return run(config)


def demo(args: argparse.Namespace) -> int:
    import trio
    from hypercorn.trio import serve as hypercorn_serve

    from .app import create_app
    from .config import demo_settings, environment
    from .logs import setup_logging

    bind = args.bind[0] if args.bind else "127.0.0.1:8000"
    host, _, port = bind.rpartition(":")
    hosts = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {host}
    origins = [f"http://{h}:{port}" for h in sorted(hosts)]
    settings = demo_settings(origins, environment())
    setup_logging(settings)
    config = hypercorn_config([bind], 1)
    url = f"http://{bind}"
    print(
        "quartproxy DEMO MODE: built-in echo upstream (no n8n), ephemeral secrets, "
        "in-memory store.\n"
        f"  Open {url}/ and chat. Nothing here is fit for production; see README.md.\n"
        f"  Allowed origins: {', '.join(origins)}",
        flush=True,
    )
    trio.run(hypercorn_serve, create_app(settings), config)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quartproxy", description=__doc__)
    parser.add_argument("command", nargs="?", choices=["serve", "demo"], default="serve")
    parser.add_argument("--bind", "-b", action="append", help="HOST:PORT (repeatable)")
    parser.add_argument("--workers", "-w", type=int, help="worker processes (serve only)")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
