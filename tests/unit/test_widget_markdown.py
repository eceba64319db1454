"""The widget's inline Markdown (static/widget.js), run by Node with a minimal fake DOM
(tests/unit/js/markdown_check.js): the linear scanner renders exactly what the regex it
replaced rendered (tests/unit/js/markdown_oracle.js) on random texts, and texts that made that
regex quadratic or worse (issue 13: `a_a_a_…`) render in one pass.

The Chromium test of the same (a streamed 20k-character answer) is in
tests/browser/test_widget_markdown_load.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "static" / "widget.js"
JS = Path(__file__).resolve().parent / "js"
NODE = shutil.which("node") or shutil.which("nodejs")
# A bound on a hang, not a timing assertion: these inputs take well under a second in one pass;
# the old regex needed minutes for them (100k characters of `a_`: 24 s on the test machine).
BOUND = 60


def run(*args: str) -> dict[str, object]:
    if NODE is None:
        pytest.fail("node is needed for the widget's unit tests (apt-get install nodejs)")
    done = subprocess.run(
        [NODE, str(JS / "markdown_check.js"), str(WIDGET), str(JS / "markdown_oracle.js"), *args],
        capture_output=True,
        text=True,
        timeout=BOUND,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scanner_renders_what_the_regex_rendered(seed: int) -> None:
    assert run("differential", "20000", str(seed)) == {"ok": True, "count": 20000}


@pytest.mark.parametrize(
    "text",
    [
        "a_" * 100_000,  # `_` never closes: every opener used to scan to the end
        "a_" * 100_000 + "_",  # ... and then closes at the very end, rejected each time
        "a*" * 100_000,
        "**a" * 70_000,
        "__a" * 70_000,
        "[" * 200_000,  # links: every `[` used to look for its `]`
        "[" * 100_000 + "a](",
        "`a``" * 50_000,  # code spans of unmatched lengths
        "`" * 200_000 + "a",
        "http://" * 30_000,
    ],
    ids=lambda t: f"{t[:6]!r}x{len(t)}",
)
def test_pathological_texts_render_in_one_pass(text: str, tmp_path: Path) -> None:
    src = tmp_path / "answer.txt"
    src.write_text(text, encoding="utf-8")
    out = run("render", str(src))
    assert out["ok"] is True and out["chars"] == len(text)
