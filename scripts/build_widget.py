"""Build static/widget.js from widget/src/*.js: the parts, in a fixed order, in one IIFE.

    python scripts/build_widget.py          # write static/widget.js
    python scripts/build_widget.py --check  # exit 1 if static/widget.js is not what the parts make

No bundler and no module system: the parts are slices of one function body and share its
scope (a `var` or `function` of one part is visible in every other), so the widget stays one
file with no runtime dependency, served as is (gzip and brotli made at start, a digest URL:
quartproxy/http/assets.py). What a part does at load time runs in ORDER; functions are hoisted,
so a part may call a function of a later one from inside a function. Each part may open with a
`/** … */` note for whoever edits it; the note is not shipped, nor are whole-line `//`
comments (≈ 3.7 KB of the gzipped file: the reasons are for editors, not for visitors' bandwidth;
the parts use no template literals or line continuations, where such a line would be text).
Everything else is copied as it is, indented by two spaces. tests/unit/test_widget_build.py
fails when static/widget.js and the parts disagree. How to work on the widget: docs/widget.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "widget" / "src"
TARGET = ROOT / "static" / "widget.js"

# The order is the order in which their top-level statements run.
ORDER = (
    "config.js",  # options, proxy address, limits; stops when embedded twice
    "i18n.js",  # string tables, language, t(), the texts a site may set
    "storage.js",  # what is kept in the browser, only after the visitor used the chat
    "events.js",  # emit(): QuartProxyChat.on() hooks and DOM events
    "markdown.js",  # the safe Markdown renderer (linear inline scanner)
    "styles.js",  # the shadow root's stylesheet
    "view.js",  # shadow host, colour scheme, launcher and panel elements
    "render.js",  # bubbles, notices, status line, typing, copy, announcements
    "panel.js",  # open/close, reset confirmation, keys, counter, submit
    "attach.js",  # files: paperclip, drop, paste, chips, limits, the multipart body
    "http.js",  # requests, error codes, the session token
    "streams.js",  # line splitting, SSE parsing, reading a fetch body
    "answer.js",  # a turn's state and events, painting the streaming answer
    "transports.js",  # SSE, WebSocket, NDJSON
    "fallback.js",  # resume after a broken link, transport fallback
    "send.js",  # send(), finishAnswer(), the visitor's error messages
    "history.js",  # reload resume, history sync, reset, other tabs
    "main.js",  # window.QuartProxyChat, first render, mount
    "site.js",  # data-site: the site's widget defaults from the gateway
)
BANNER = (
    "/*! quartproxy chat widget | MIT"
    " | talks only to the proxy it was loaded from (or data-proxy) */\n"
)
HEAD = "(function () {\n  'use strict';\n"
TAIL = "\n})();\n"


class BuildError(Exception):
    pass


def part(name: str, text: str) -> str:
    """One source file as it goes into the IIFE: its leading note dropped, indented."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].startswith("/**"):
        end = next((i for i, line in enumerate(lines) if line.rstrip().endswith("*/")), None)
        if end is None:
            raise BuildError(f"{name}: the opening /** note is never closed")
        lines = lines[end + 1 :]
    lines = [line for line in lines if not line.lstrip().startswith("//")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BuildError(f"{name}: nothing but a note")
    return "\n".join(f"  {line}" if line else "" for line in lines) + "\n"


def build(sources: Path = SOURCES) -> str:
    found = {p.name for p in sources.glob("*.js")}
    if unknown := sorted(found - set(ORDER)):
        raise BuildError(f"not in ORDER of scripts/build_widget.py: {', '.join(unknown)}")
    if missing := [n for n in ORDER if n not in found]:
        raise BuildError(f"missing in {sources}: {', '.join(missing)}")
    parts = [part(n, (sources / n).read_text(encoding="utf-8")) for n in ORDER]
    return BANNER + HEAD + "\n".join(parts) + TAIL


def main(argv: list[str] | None = None, sources: Path = SOURCES, target: Path = TARGET) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    args = parser.parse_args(argv)
    try:
        made = build(sources).encode("utf-8")
    except BuildError as e:
        print(f"build_widget: {e}", file=sys.stderr)
        return 2
    current = target.read_bytes() if target.exists() else None  # bytes: a CRLF copy differs
    if args.check:
        if current != made:
            print(
                f"{target} differs from {sources}: run python scripts/build_widget.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if current != made:
        target.write_bytes(made)
    print(f"{target.name}: {len(made)} bytes from {len(ORDER)} parts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
