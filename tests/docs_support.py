"""Reading the Markdown docs for the tests that keep them true: headings, anchors, links, table
rows. Only what README.md and docs/ use: fenced code blocks, inline code, GitHub-style anchors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
# [text](target) and ![alt](target); the text may hold inline code with brackets in it.
_LINK = re.compile(r"!?\[(?:[^\[\]`]|`[^`]*`)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def markdown_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: inline-code marks dropped, lower case, punctuation other
    than `-` and `_` removed, each space a hyphen (so " — " becomes "--")."""
    text = _CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor of a Markdown file, with GitHub's -1, -2 suffixes for repeated headings."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        m = _HEADING.match(line)
        if not m:
            continue
        base = slug(m.group(2))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every Markdown link outside code (blocks and spans)."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        # Blank out code spans, but keep those inside a link's text: `[`x`](y)` is a link.
        stripped = _CODE_SPAN.sub(lambda m: "`" + "x" * len(m.group(2)) + "`", line)
        for m in _LINK.finditer(stripped):
            yield number, m.group(1)


def table_rows(text: str) -> Iterator[list[str]]:
    """Cells of every table row (header and separator rows included), outside code blocks."""
    for _, line in prose_lines(text):
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            cells = re.split(r"(?<!\\)\|", s[1:-1])
            yield [c.strip() for c in cells]


def code_names(cell: str) -> list[str]:
    """The inline-code words of a table cell: "`A`, `B`" -> ["A", "B"]."""
    return [m.group(2) for m in _CODE_SPAN.finditer(cell)]


_SKIP_DIRS = {".git", ".venv", ".venv313", "node_modules", "__pycache__", "test-artifacts"}


def repo_files() -> list[str]:
    """Paths (posix, relative to the root) of the repository's files, without virtualenvs,
    caches and test artifacts."""
    out = []
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".venv")]
        rel = Path(top).relative_to(ROOT)
        out.extend((rel / f).as_posix() for f in files)
    return out
