"""What DEBUG reload watches (quartproxy/reload.py), on a real small tree in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

from quartproxy.reload import differences, snapshot, watched_files


def tree(root: Path) -> Path:
    (root / "quartproxy" / "http" / "__pycache__").mkdir(parents=True)
    (root / "static").mkdir()
    (root / "quartproxy" / "__init__.py").write_text("")
    (root / "quartproxy" / "http" / "ops.py").write_text("A = 1\n")
    (root / "quartproxy" / "http" / "__pycache__" / "ops.cpython-311.pyc").write_bytes(b"x")
    (root / "quartproxy" / "http" / ".ops.py.swp").write_bytes(b"x")
    (root / "quartproxy" / "http" / "ops.py~").write_text("")
    (root / "static" / "widget.js").write_text("//\n")
    (root / "hypercorn.toml").write_text("workers = 1\n")
    return root


def scan(root: Path) -> dict[str, tuple[int, int, int]]:
    return snapshot(watched_files(root, root))


def test_the_package_static_toml_and_dotenv_are_watched_caches_and_swap_files_not(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path)
    (root / ".env").write_text("DEBUG=true\n")
    names = sorted(str(Path(p).relative_to(root)) for p in scan(root))
    assert names == [
        ".env",
        "hypercorn.toml",
        "quartproxy/__init__.py",
        "quartproxy/http/ops.py",
        "static/widget.js",
    ]


def test_edits_new_files_removals_and_replacing_saves_are_differences(tmp_path: Path) -> None:
    root = tree(tmp_path)
    ops = root / "quartproxy" / "http" / "ops.py"
    before = scan(root)
    assert differences(before, scan(root)) == []

    ops.write_text("A = 2\n")  # same size: the mtime (or the size, or the inode) tells
    os.utime(ops, ns=(before[str(ops)][0] + 1_000_000, before[str(ops)][0] + 1_000_000))
    assert differences(before, scan(root)) == [str(ops)]

    before = scan(root)
    (root / ".env").write_text("X=1\n")  # a watched file appearing
    (root / "static" / "widget.js").unlink()
    assert differences(before, scan(root)) == [str(root / ".env"), str(root / "static/widget.js")]

    before = scan(root)
    new = root / "quartproxy" / "http" / "ops.py.new"
    new.write_text("A = 3\n")
    os.replace(new, ops)  # an editor's atomic save: a new inode under the old name
    assert str(ops) in differences(before, scan(root))

    before = scan(root)
    (root / "quartproxy" / "http" / "__pycache__" / "ops.cpython-311.pyc").write_bytes(b"yy")
    assert differences(before, scan(root)) == []
