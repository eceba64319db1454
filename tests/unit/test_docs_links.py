"""Every link and file the docs and the code name exists: relative Markdown links in README.md
and docs/ (with their #anchors), repository paths written in the docs, and Markdown files
(`docs/….md`, README.md, any `….md`) and repository paths named in code, comments and scripts."""

from __future__ import annotations

import re
import site
from pathlib import Path

from tests.docs_support import ROOT, anchors, links, markdown_files, prose_lines, repo_files

# Where code, comments and scripts may name files.
CODE_DIRS = ("quartproxy", "tests", "bench", "deploy", "static", "scripts", ".ci")
CODE_FILES = (
    "Dockerfile", "docker-compose.yml", "hypercorn.toml", ".env.example", "pyproject.toml",
    "requirements.txt", "requirements-dev.txt", ".dockerignore", ".gitignore",
)  # fmt: skip
CODE_SUFFIXES = {".py", ".js", ".sh", ".toml", ".yml", ".yaml", ".conf", ".txt", ".html", ".css"}
# Files holding data, not prose (n8n workflow exports, benchmark results).
NOT_PROSE = ("tests/e2e/workflows/", "bench/results/")

TOP = ("quartproxy", "tests", "bench", "deploy", "static", "scripts", ".ci", "docs")
# A path into the repository: starts at a top-level directory, no placeholders.
_TOPS = "|".join(re.escape(t) for t in TOP)
REPO_PATH = re.compile(rf"(?<![\w./-])((?:{_TOPS})/[\w./-]*)")
MARKDOWN_NAME = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")
PLACEHOLDER_AFTER = re.compile(r"^[<*{…$]")


def _code_files() -> list[Path]:
    """Code, comments and scripts; not this file, whose checks of the scanners name examples."""
    files = [ROOT / name for name in CODE_FILES if (ROOT / name).is_file()]
    for top in CODE_DIRS:
        for path in sorted((ROOT / top).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if (
                path.is_file()
                and (path.suffix in CODE_SUFFIXES or path.parent.name == ".ci")
                and not rel.startswith(NOT_PROSE)
                and "__pycache__" not in rel
                and path != Path(__file__).resolve()
            ):
                files.append(path)
    return files


def _exists(rel: str) -> bool:
    return (ROOT / rel.rstrip("/")).exists()


def _repo_paths(text: str) -> list[str]:
    """Repository paths in `text`, leaving out ones followed by a placeholder
    (`bench/results/<UTC time>.json`, `docs/upstream/*.md`) and glob patterns."""
    out = []
    for m in REPO_PATH.finditer(text):
        after = text[m.end() : m.end() + 1]
        if PLACEHOLDER_AFTER.match(after):
            continue
        rel = m.group(1).rstrip(".-")
        if rel not in out:
            out.append(rel)
    return out


def test_relative_links_in_the_docs_resolve() -> None:
    broken = []
    for md in markdown_files():
        for line, target in links(md):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path_part, _, anchor = target.partition("#")
            file = (md.parent / path_part).resolve() if path_part else md
            where = f"{md.relative_to(ROOT)}:{line}: {target}"
            if not file.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{where} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_repository_paths_named_in_the_docs_exist() -> None:
    missing = []
    for md in markdown_files():
        for line, text in prose_lines(md.read_text(encoding="utf-8")):
            for rel in _repo_paths(text):
                if not _exists(rel):
                    missing.append(f"{md.relative_to(ROOT)}:{line}: {rel}")
    assert not missing, "files named in the docs that do not exist:\n" + "\n".join(missing)


def test_markdown_files_named_in_code_exist() -> None:
    """`docs/….md`, README.md and any other `….md` named in code, comments and scripts is a
    file of the repository (a bare name: some file of that name, e.g. bench's latest.md)."""
    basenames = {Path(f).name for f in repo_files() if f.endswith(".md")}
    missing = []
    for path in _code_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for m in MARKDOWN_NAME.finditer(line):
                name = m.group(1)
                ok = _exists(name) if "/" in name else name in basenames
                if not ok:
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not missing, "Markdown files named in code that do not exist:\n" + "\n".join(missing)


def test_repository_paths_named_in_code_exist() -> None:
    missing = []
    for path in _code_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for rel in _repo_paths(line):
                if not _exists(rel):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {rel}")
    assert not missing, "paths named in code that do not exist:\n" + "\n".join(missing)


def test_the_checks_see_links_and_paths() -> None:
    """The scanners themselves: they find what they must (a regex that matched nothing would
    make every test above pass)."""
    readme = ROOT / "README.md"
    targets = [t for _, t in links(readme)]
    assert "docs/api.md" in targets and any(t.startswith("docs/api.md#") for t in targets)
    assert anchors(ROOT / "docs" / "api.md") >= {"errors", "ws-apiv1chatws--the-websocket-channel"}
    sample = "quartproxy/core/http1.py, docs/settings.md, bench/results/<t>.json, .ci/setup-*.sh"
    assert _repo_paths(sample) == ["quartproxy/core/http1.py", "docs/settings.md"]
    assert [m.group(1) for m in MARKDOWN_NAME.finditer("(docs/a.md, README.md)")] == [
        "docs/a.md",
        "README.md",
    ]


SOURCE_NAME = re.compile(
    r"(?<![\w/*.%-])(?:\./)?((?:[\w.-]+/)*[\w-]+\.(?:py|sh|toml|conf|yml|html))\b(?!\*)"
)


def _library_file(name: str) -> bool:
    """A path inside an installed library (`hypercorn/protocol/h11.py`), named where a comment
    explains a workaround of that library."""
    return "/" in name and any((Path(d) / name).is_file() for d in site.getsitepackages())


def test_source_files_named_anywhere_exist() -> None:
    """A module, script or config named in the docs or in code (`core/http1.py`, `lean.py`,
    `.ci/setup-redis.sh`) is a file of the repository: a path, or the tail of one."""
    files = repo_files()
    missing = []
    for path in _code_files() + markdown_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            for m in SOURCE_NAME.finditer(line):
                name = m.group(1)
                if not any(f == name or f.endswith("/" + name) for f in files) and not (
                    _library_file(name)
                ):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    assert not missing, "source files named that do not exist:\n" + "\n".join(missing)
