"""pyproject.toml declares what requirements.txt lists, and `pip install .` gives a working
`quartproxy` command (it used to install a package with no dependencies)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _requirements_txt() -> set[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    reqs = (line.split("#", 1)[0].strip() for line in lines)
    return {str(Requirement(r)) for r in reqs if r and not r.startswith("-")}


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_pyproject_dependencies_are_requirements_txt() -> None:
    declared = {str(Requirement(r)) for r in _pyproject()["project"]["dependencies"]}
    assert declared == _requirements_txt()
    assert any("python_version" in r for r in declared)  # the Quart split kept its markers


def test_pip_install_gives_metadata_and_a_working_console_script(tmp_path: Path) -> None:
    """Build and install the project (without its dependencies: the shared environment has
    them) from a copy of the source, then run the installed `quartproxy` command."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "requirements.txt", "hypercorn.toml"):
        shutil.copy(ROOT / name, src / name)
    for tree in ("quartproxy", "static"):
        shutil.copytree(ROOT / tree, src / tree, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(src),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (dist,) = target.glob("quartproxy-*.dist-info")
    meta = Parser().parsestr((dist / "METADATA").read_text())
    assert {str(Requirement(r)) for r in meta.get_all("Requires-Dist") or []} == (
        _requirements_txt()
    )
    assert "quartproxy = quartproxy.__main__:main" in (dist / "entry_points.txt").read_text()
    script = target / "bin" / "quartproxy"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("N8N_", "JWT_", "SESSION_"))}
    env["PYTHONPATH"] = str(target)
    env["JWT_SECRET_KEY"] = "short"
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # the installed command ran the installed package's main(): one configuration error line
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("quartproxy: configuration error: ")
    assert (
        str(target)
        in subprocess.run(
            [sys.executable, "-c", "import quartproxy; print(quartproxy.__file__)"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
    )

    # the widget and the server settings come with it (an installed gateway used to serve no
    # widget: static/ and hypercorn.toml stayed in the checkout), and the code finds them there
    shipped = target / "quartproxy" / "_shipped"
    assert (shipped / "static" / "widget.js").read_bytes() == (
        ROOT / "static/widget.js"
    ).read_bytes()
    assert (shipped / "hypercorn.toml").read_text() == (ROOT / "hypercorn.toml").read_text()
    assert not list(shipped.glob("*.py")) and not (shipped / "tests").exists()
    found = subprocess.run(
        [sys.executable, "-c", "from quartproxy import shipped; print(shipped.STATIC)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    assert found == str(shipped / "static")


def test_every_package_of_the_tree_is_declared() -> None:
    """pyproject lists packages by name (for the `_shipped` mapping): a new subpackage left out
    of the list would be missing from every install."""
    tree = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "quartproxy").rglob("__init__.py")
    }
    declared = set(_pyproject()["tool"]["setuptools"]["packages"])
    assert declared == tree | {"quartproxy._shipped"}


def test_shipped_files_are_found_in_a_checkout_and_in_an_install(tmp_path: Path) -> None:
    from quartproxy import shipped

    assert shipped.ROOT == ROOT and shipped.STATIC == ROOT / "static"
    package = tmp_path / "site-packages" / "quartproxy"  # no static/ beside it: installed
    package.mkdir(parents=True)
    assert shipped.root(package) == package / "_shipped"
