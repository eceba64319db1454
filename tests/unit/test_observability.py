"""The shipped PromQL (alert rules, dashboard) names only metrics and labels the app exports,
and promtool accepts the rules, their unit tests and the scrape configs.

The live check — every expression returns series from a real Prometheus scraping a real
gateway — is tests/integration/test_prometheus.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.observability import DASHBOARD, RULES, TARGET_LABELS, exported, queries

_SELECTOR = re.compile(r"\b([a-z_][a-z0-9_]*)\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)")
_BY = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")


def test_every_expression_uses_metrics_the_app_exports() -> None:
    names = exported()
    missing = {
        q.where: sorted(m for m in q.metrics if m not in names)
        for q in queries()
        if any(m not in names for m in q.metrics)
    }
    assert not missing, f"not exported by the app: {missing}"
    assert all(q.metrics for q in queries()), [q.where for q in queries() if not q.metrics]


def test_every_label_an_expression_uses_exists_on_its_metrics() -> None:
    names = exported()
    wrong = []
    for q in queries():
        known = set(TARGET_LABELS)
        for metric, matchers in _SELECTOR.findall(q.expr):
            labels = names.get(metric, frozenset()) | TARGET_LABELS
            known |= labels
            wrong += [
                f"{q.where}: {metric} has no label {label!r}"
                for label, _ in _MATCHER.findall(matchers)
                if label not in labels
            ]
        for metric in q.metrics:
            known |= names.get(metric, frozenset())
        for group in _BY.findall(q.expr):
            wrong += [
                f"{q.where}: no metric of it has a label {label!r}"
                for label in (x.strip() for x in group.split(","))
                if label and label not in known
            ]
    assert not wrong, "\n".join(wrong)


def test_the_label_check_would_catch_a_typo() -> None:
    """The checks above are not vacuous: a misspelt label and metric are reported."""
    names = exported()
    assert "outcome" in names["quartproxy_chat_turns_total"]
    assert "outcom" not in names["quartproxy_chat_turns_total"]
    assert "quartproxy_chat_turn_total" not in names


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.fail("promtool not found (apt-get install prometheus; .ci/setup-debian.sh)")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, check=False, cwd=RULES.parent
    )


@pytest.mark.prometheus
def test_promtool_accepts_the_rules_and_the_scrape_configs() -> None:
    for args in (
        ("check", "rules", "rules.yml"),
        ("check", "config", "prometheus.yml"),
        # its token file exists only on a real Prometheus host
        ("check", "config", "--syntax-only", "prometheus.instances.yml"),
    ):
        done = promtool(*args)
        assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.prometheus
def test_each_alert_fires_when_it_should_and_stays_quiet_otherwise() -> None:
    """deploy/prometheus/rules_test.yml: for every alert, input series that must fire it and
    series that must not (below threshold, excluded labels, too little traffic, too short)."""
    done = promtool("test", "rules", "rules_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    import yaml

    tested = {
        case["alertname"]
        for group in yaml.safe_load((RULES.parent / "rules_test.yml").read_text())["tests"]
        for case in group["alert_rule_test"]
        if case["exp_alerts"]
    }
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts - tested == set(), "alerts without a firing test case"


def test_dashboard_has_the_panels_an_operator_opens_first() -> None:
    import json

    model = json.loads(DASHBOARD.read_text())
    titles = " | ".join(p["title"] for p in model["panels"]).lower()
    for needed in (
        "turns/s by outcome",
        "error answers/s by code",
        "time to first token",
        "turn duration",
        "open streams by channel",
        "turns in flight",
        "n8n response time",
        "n8n errors/s by kind",
        "rejections/s by reason",
        "workers and draining",
        "memory",
        "file descriptors",
    ):
        assert needed in titles
    variables = {v["name"] for v in model["templating"]["list"]}
    assert {"instance", "site", "datasource"} <= variables
    quantiles = [
        t["expr"] for p in model["panels"] for t in p.get("targets", []) if "quantile" in t["expr"]
    ]
    for q in ("0.5", "0.95", "0.99"):
        assert any(f"histogram_quantile({q}," in e for e in quantiles)
