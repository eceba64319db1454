"""static/widget.js is what scripts/build_widget.py makes from widget/src/*.js.

The shipped file is committed (deploys and the gateway serve it as is), so an edit to one side
only must fail here: either the part was changed and the build not run, or the built file was
edited by hand and the change would be lost at the next build."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
WIDGET = ROOT / "static" / "widget.js"
NODE = shutil.which("node") or shutil.which("nodejs")


def load_builder() -> ModuleType:
    path = ROOT / "scripts" / "build_widget.py"
    spec = importlib.util.spec_from_file_location("build_widget", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


builder = load_builder()


def copy_sources(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    shutil.copytree(builder.SOURCES, src)
    return src


def test_shipped_widget_is_the_build_of_its_sources() -> None:
    made = builder.build().encode("utf-8")
    assert WIDGET.read_bytes() == made, "run python scripts/build_widget.py"


def test_check_mode_fails_on_an_edited_part(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = copy_sources(tmp_path)
    target = tmp_path / "widget.js"
    target.write_bytes(builder.build(src).encode("utf-8"))
    assert builder.main(["--check"], sources=src, target=target) == 0
    part = src / "i18n.js"
    edited = part.read_text(encoding="utf-8").replace("'Chat with us'", "'Talk to us'")
    part.write_text(edited, encoding="utf-8")
    assert builder.main(["--check"], sources=src, target=target) == 1
    assert "run python scripts/build_widget.py" in capsys.readouterr().err
    assert builder.main([], sources=src, target=target) == 0  # rebuilt: the edit is in
    assert "'Talk to us'" in target.read_text(encoding="utf-8")
    assert builder.main(["--check"], sources=src, target=target) == 0


def test_check_mode_fails_on_a_hand_edited_build(tmp_path: Path) -> None:
    target = tmp_path / "widget.js"
    made = builder.build().encode("utf-8")
    target.write_bytes(made)
    assert builder.main(["--check"], target=target) == 0
    target.write_bytes(made.replace(b"'1.0.0'", b"'1.0.1'", 1))
    assert builder.main(["--check"], target=target) == 1
    target.write_bytes(made.replace(b"\n", b"\r\n"))  # an editor's line endings
    assert builder.main(["--check"], target=target) == 1


def test_every_part_is_built_and_none_is_left_out(tmp_path: Path) -> None:
    assert sorted(p.name for p in builder.SOURCES.glob("*.js")) == sorted(builder.ORDER)
    src = copy_sources(tmp_path)
    (src / "extra.js").write_text("var x = 1;\n", encoding="utf-8")
    with pytest.raises(builder.BuildError, match=r"extra\.js"):
        builder.build(src)
    (src / "extra.js").unlink()
    (src / "send.js").unlink()
    with pytest.raises(builder.BuildError, match=r"send\.js"):
        builder.build(src)


def test_notes_are_not_shipped_and_code_is_indented_into_the_iife() -> None:
    source = "/**\n * note\n */\n\nvar a = 1;\n\nfunction b() {\n  return a;\n}\n"
    assert builder.part("x.js", source) == "  var a = 1;\n\n  function b() {\n    return a;\n  }\n"
    with pytest.raises(builder.BuildError, match="never closed"):
        builder.part("x.js", "/**\n * note\nvar a = 1;\n")
    built = builder.build()
    assert built.startswith(builder.BANNER + "(function () {\n  'use strict';\n")
    assert built.endswith("\n})();\n")
    assert "\n/**" not in built and "\n  /**" not in built  # no editor's note went out


def test_whole_line_comments_are_not_shipped_but_code_with_slashes_is() -> None:
    source = (
        "// why\nvar u = 'https://x.example'; // kept: not a whole line\n  // indented why\nf();\n"
    )
    assert builder.part("x.js", source) == (
        "  var u = 'https://x.example'; // kept: not a whole line\n  f();\n"
    )
    shipped = builder.build()
    assert not [line for line in shipped.splitlines() if line.lstrip().startswith("//")]


def test_parts_stay_small() -> None:
    sizes = {n: len((builder.SOURCES / n).read_text("utf-8").splitlines()) for n in builder.ORDER}
    assert max(sizes.values()) < 400, sizes


def test_built_widget_is_valid_javascript() -> None:
    if NODE is None:
        pytest.fail("node is needed for the widget's unit tests (apt-get install nodejs)")
    done = subprocess.run(
        [NODE, "--check", str(WIDGET)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
