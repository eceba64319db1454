"""`quartproxy:app` (what Hypercorn serves) stays the app whatever else is imported: the factory
module is `quartproxy.factory`, so no submodule import rebinds the package attribute `app`."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest

import quartproxy
from tests.support import settings_for


def test_importing_every_submodule_leaves_quartproxy_app_the_lazy_app() -> None:
    for module in pkgutil.walk_packages(quartproxy.__path__, "quartproxy."):
        if module.name.endswith("__main__"):
            continue
        importlib.import_module(module.name)
    assert isinstance(quartproxy.app, quartproxy._LazyApp)
    assert callable(quartproxy.app)


def test_a_metrics_directory_set_after_the_import_is_refused_by_the_factory(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """prometheus-client fixed where values live when it was imported; a directory named later
    would be ignored and /metrics would show one worker's figures as the total."""
    from quartproxy import metrics
    from quartproxy.factory import create_app

    assert metrics.MULTIPROCESS_DIR is None  # the unit tests run single-process
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        create_app(settings_for("http://127.0.0.1:9/webhook"))
