"""`python -m quartproxy [serve] [--bind HOST:PORT] [--workers N]` runs the gateway with the
settings of hypercorn.toml, like `hypercorn -c hypercorn.toml quartproxy:app`, plus what plain
Hypercorn does not do: a graceful drain on SIGTERM that ends open answer streams with a final
event (server.py), metrics summed over several workers (a fresh PROMETHEUS_MULTIPROC_DIR), and
access/error logs in the app's format (JSON in production). `DEBUG=true` adds reload on code
changes. `python -m quartproxy demo` starts a self-contained demo with no n8n and no
configuration (`demo --tls`: over HTTPS and HTTP/2 with a throwaway certificate).
`--certfile/--keyfile` make Hypercorn terminate TLS itself, with HTTP/2 by ALPN (docs/http2.md)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path

from .core.numbers import parse_udecimal, parse_uint
from .shipped import HYPERCORN_TOML, ROOT

DEMO_ORIGINS = "QUARTPROXY_DEMO_ORIGINS"  # the demo command to its DEBUG workers (demo.py)


def hypercorn_config(  # type: ignore[no-untyped-def]
    bind: list[str] | None,
    workers: int | None,
    certfile: str | None = None,
    keyfile: str | None = None,
):
    from hypercorn.config import Config

    from .tls import ALPN

    toml = Path("hypercorn.toml")
    if not toml.is_file():
        toml = HYPERCORN_TOML  # the checkout's, or the copy an install ships (shipped.py)
    config = Config.from_toml(str(toml)) if toml.is_file() else Config()
    config.worker_class = "trio"
    if bind:
        config.bind = bind
    if workers:
        config.workers = workers
    if certfile and keyfile:  # TLS here: every `bind` is served over TLS, h2 by ALPN
        config.certfile, config.keyfile = certfile, keyfile
        config.alpn_protocols = list(ALPN)
    return config


def metrics_directory() -> None:
    """Several workers write their metrics to files in one directory that /metrics sums. Use
    PROMETHEUS_MULTIPROC_DIR when given (emptied: stale files of a previous run would count),
    else a fresh temporary directory removed at exit. Must run before workers are spawned."""
    log = logging.getLogger("quartproxy.server")
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        log.info("worker metrics in %s", given, extra={"event": "metrics_dir", "path": given})
        return
    made = tempfile.mkdtemp(prefix="quartproxy-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    atexit.register(shutil.rmtree, made, ignore_errors=True)
    log.info("worker metrics in %s", made, extra={"event": "metrics_dir", "path": made})


def serve(args: argparse.Namespace) -> int:
    from .config import ConfigError, environment, load_settings
    from .logs import setup_logging

    try:
        settings = load_settings(environment())  # fail fast, with one line, before workers spawn
    except ConfigError as exc:
        print(f"quartproxy: configuration error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings)
    from .tls import check_pair

    if problem := check_pair(args.certfile, args.keyfile):
        print(f"quartproxy: configuration error: {problem}", file=sys.stderr)
        return 2
    loader = partial(load_settings, environment())
    make_config = partial(serve_config, args, "quartproxy:app", loader)  # what hypercorn serves
    return start(make_config(), make_config, debug=settings.debug)


def serve_config(args: argparse.Namespace, application_path: str, settings):  # type: ignore[no-untyped-def]
    """hypercorn.toml with the command line on top, and what Hypercorn must enforce for the
    app's settings (called again on a DEBUG reload, so `settings` is a loader)."""
    from .config import ConfigError
    from .logs import ACCESS_LOGGER, SERVER_LOGGER, AccessLogger
    from .server import apply_settings

    config = hypercorn_config(
        args.bind, args.workers, getattr(args, "certfile", None), getattr(args, "keyfile", None)
    )
    # A reload with broken settings: the worker says why when it builds the app.
    with contextlib.suppress(ConfigError):
        config = apply_settings(config, settings())
    config.application_path = application_path
    if getattr(args, "graceful_timeout", None) is not None:
        config.graceful_timeout = args.graceful_timeout
    # Hypercorn's "-" means its own plain stdout/stderr loggers; use the app's format instead.
    # (Loggers are pickled by name, so spawned workers log through their own handlers.)
    if config.accesslog == "-":
        config.accesslog = logging.getLogger(ACCESS_LOGGER)
    config.logger_class = AccessLogger
    if config.errorlog == "-":
        config.errorlog = logging.getLogger(SERVER_LOGGER)
    return config


def start(config, make_config, *, debug: bool) -> int:  # type: ignore[no-untyped-def]
    """Serve `config`: supervised when there are several workers or with DEBUG reload."""
    from .server import run

    reload = None
    if debug:
        # Development only: a change to the package, static/, hypercorn.toml or .env replaces
        # the workers (reload.py); a supervisor is needed even for one worker.
        from .reload import Reload

        reload = Reload(ROOT, Path.cwd(), make_config)
        config.workers = max(1, config.workers)
    if config.workers > 1 or reload is not None:
        metrics_directory()
    return run(config, reload=reload)


def demo(args: argparse.Namespace) -> int:
    import trio
    from hypercorn.trio import serve as hypercorn_serve

    from .config import _bool, demo_settings, environment
    from .factory import create_app
    from .logs import setup_logging

    bind = args.bind[0] if args.bind else "127.0.0.1:8000"
    host, _, port = bind.rpartition(":")
    hosts = {host, "localhost", "127.0.0.1"} if host in ("127.0.0.1", "localhost") else {host}
    scheme = "https" if args.tls else "http"
    origins = [f"{scheme}://{h}:{port}" for h in sorted(hosts)]
    env = environment()
    settings = demo_settings(origins, env)
    setup_logging(settings)
    certfile = keyfile = None
    if args.tls:
        from .tls import throwaway_certificate

        certfile, keyfile = throwaway_certificate(sorted(hosts))
        atexit.register(shutil.rmtree, str(Path(certfile).parent), ignore_errors=True)
    url = f"{scheme}://{bind}"
    print(
        "quartproxy DEMO MODE: built-in echo upstream (no n8n), ephemeral secrets, "
        "in-memory store.\n"
        f"  Open {url}/ and chat. Nothing here is fit for production; see README.md.\n"
        f"  Allowed origins: {', '.join(origins)}",
        flush=True,
    )
    if args.tls:
        print(
            "  TLS with a THROWAWAY self-signed certificate made just now (valid 1 day, deleted\n"
            "  at exit; no browser trusts it: accept the warning once). HTTP/2 by ALPN.\n"
            f"  Certificate: {certfile}",
            flush=True,
        )
    if _bool("DEBUG", env.get("DEBUG") or "false"):
        # The same reload as `serve`: a worker process builds the demo app (demo.py), and each
        # reload starts a fresh demo (new secrets, empty in-memory store).
        os.environ[DEMO_ORIGINS] = ",".join(origins)
        demo_args = argparse.Namespace(
            bind=[bind], workers=1, graceful_timeout=None, certfile=certfile, keyfile=keyfile
        )
        make_config = partial(
            serve_config, demo_args, "quartproxy.demo:worker_app()", lambda: settings
        )
        return start(make_config(), make_config, debug=True)
    from .server import apply_settings, shutdown_trigger

    config = apply_settings(hypercorn_config([bind], 1, certfile, keyfile), settings)
    # SIGINT and SIGTERM end the demo the way they end a worker (a drain, then Hypercorn's
    # shutdown), so the throwaway certificate is deleted at exit either way, also when SIGINT
    # came ignored from the parent (`nohup ... &`, a CI job) and Python set no handler for it.
    trigger = partial(shutdown_trigger, config.graceful_timeout, None)
    trio.run(partial(hypercorn_serve, create_app(settings), config, shutdown_trigger=trigger))
    return 0


def _count(text: str) -> int:
    n = parse_uint(text)
    if n is None or n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return n


def _seconds(text: str) -> float:
    n = parse_udecimal(text)
    if n is None:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    return n


def api_key(argv: list[str]) -> int:
    """`api-key <id>`: a new API key (to give to the client, once) and its API_KEYS entry."""
    from .core.api_keys import new_key

    if len(argv) != 1:
        print("usage: python -m quartproxy api-key <id>  (id: a-z, 0-9, up to 32)", file=sys.stderr)
        return 2
    try:
        key, entry = new_key(argv[0])
    except ValueError as exc:
        print(f"api-key: {exc}", file=sys.stderr)
        return 2
    print(f"key (give it to the client; it is not stored): {key}")
    print(f"API_KEYS entry (add it to the setting): {entry}")
    return 0


def check_config(args: argparse.Namespace) -> int:
    """`check-config [FILE]`: validate the settings (with FILE as SITES_FILE when given), as
    a start or a reload would; one line and exit 2 on the first error, 0 and a summary when
    good. Nothing is served, nothing is connected to."""
    from .config import ConfigError, environment, load_settings

    env = environment()
    if args.file:
        env["SITES_FILE"] = args.file
    try:
        settings = load_settings(env)
    except ConfigError as exc:
        print(f"quartproxy: configuration error: {exc}", file=sys.stderr)
        return 2
    ids = settings.sites.ids if settings.sites else ("default (no SITES_FILE)",)
    print(f"quartproxy: configuration ok: {len(ids)} site(s): {', '.join(ids)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["api-key"]:  # before argparse: its own arguments
        return api_key(given[1:])
    if given[:1] == ["erase-user"]:
        from .visitors import erase_command

        return erase_command(given[1:])
    parser = argparse.ArgumentParser(prog="python -m quartproxy", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=["serve", "demo", "check-config"], default="serve"
    )
    parser.add_argument("file", nargs="?", help="check-config: the sites file to check")
    parser.add_argument("--bind", "-b", action="append", help="HOST:PORT (repeatable)")
    parser.add_argument("--workers", "-w", type=_count, help="worker processes (serve only)")
    parser.add_argument(
        "--graceful-timeout",
        type=_seconds,
        help="seconds running answers get to finish on SIGTERM (default: hypercorn.toml)",
    )
    parser.add_argument("--certfile", help="TLS certificate (PEM): serve HTTPS and HTTP/2 here")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="demo only: HTTPS and HTTP/2 with a throwaway self-signed certificate",
    )
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args)
    if args.file:
        parser.error("a FILE is only for check-config")
    if args.command == "demo":
        return demo(args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
