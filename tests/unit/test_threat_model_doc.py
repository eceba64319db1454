"""docs/threat-model.md names, for every control, the test that fails when the control is
removed. This keeps those names true: each `tests/<file>.py::<name>` (and each `::<name>`
continuing the same file) must be a test function in that file."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "threat-model.md"


def named_tests() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for line in DOC.read_text().splitlines():
        current = None
        for m in re.finditer(r"(tests/[\w/]+\.py)?::(test_\w+)", line):
            current = m.group(1) or current
            assert current is not None, line
            found.append((current, m.group(2)))
    return found


def test_every_test_the_threat_model_names_exists() -> None:
    names = named_tests()
    assert len(names) > 40
    missing = []
    for path, name in names:
        file = ROOT / path
        if not file.is_file() or not re.search(
            rf"^(async )?def {name}\(", file.read_text(), re.MULTILINE
        ):
            missing.append(f"{path}::{name}")
    assert missing == []
