"""Where the files the gateway ships beside its code are: `static/` (the widget, the demo page)
and `hypercorn.toml`.

In a checkout they are at the top of the repository; `pip install .` copies them into the
package as `quartproxy._shipped` (pyproject.toml maps that package to the repository root), so an
installed gateway serves its widget and starts with the shipped server settings too. The checkout
wins when both exist: an editable install keeps serving the files being edited.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def root(package: Path = PACKAGE) -> Path:
    """The folder holding `static/` and `hypercorn.toml`."""
    checkout = package.parent
    if (checkout / "static").is_dir():
        return checkout
    return package / "_shipped"


ROOT = root()
STATIC = ROOT / "static"
HYPERCORN_TOML = ROOT / "hypercorn.toml"
