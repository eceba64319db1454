"""The PromQL the project ships (deploy/prometheus/rules.yml, deploy/grafana/quartproxy.json)
and the metrics the app exports, for the tests that check one against the other.

- `queries()`: every expression, named by where it comes from. Alert expressions are split at
  their top-level `and` / `or` / `unless` into operands with the threshold comparison removed
  (`absent(x)` becomes `x`): each operand is a signal that must exist in a live Prometheus even
  when nothing is alerting. Dashboard variables get values that select everything.
- `exported()`: the sample names and label names the app can export, read from its registry
  (quartproxy.metrics.REGISTRY, after importing the app so every module's metrics are
  registered) and from custom collectors' `*MetricFamily(...)` declarations in the source
  (they yield nothing until their event, e.g. a supervisor restart).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "quartproxy.json"
# What the dashboard's variables become when every value is selected.
VARIABLES = {
    "$__rate_interval": "1m",
    "$instance": ".*",
    "$site": ".*",
    "$origin": ".*",
}
# Labels Prometheus adds to every target (and the scrape config's optional `site`).
TARGET_LABELS = frozenset({"instance", "job", "site", "le"})

_COMPARISON = re.compile(r"\s*(==|!=|>=|<=|>|<)\s*(bool\s+)?-?[0-9.]+(e[+-]?[0-9]+)?\s*$")
_SET_OP = re.compile(r"\b(and|or|unless)\b(\s+(on|ignoring)\s*\([^)]*\))?")
_METRIC = re.compile(r"\b((?:quartproxy|process)_[a-z0-9_]+|up)\b(?=\s*[{\[)]|\s*$)")


@dataclass(frozen=True)
class Query:
    where: str
    expr: str

    @property
    def metrics(self) -> frozenset[str]:
        return frozenset(m.group(1) for m in _METRIC.finditer(self.expr))


def split_top_level(expr: str) -> list[str]:
    """Operands of the top-level set operators (`a > 1 and on (x) b` -> [a > 1, b])."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(expr):
        ch = expr[i]
        if ch in "({[":
            depth += 1
        elif ch in ")}]":
            depth -= 1
        elif depth == 0:
            m = _SET_OP.match(expr, i)
            if m and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
                parts.append(expr[start:i])
                i = start = m.end()
                continue
        i += 1
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


def signal(operand: str) -> str:
    operand = _COMPARISON.sub("", operand.strip())
    m = re.fullmatch(r"absent\((.*)\)", operand, re.S)
    return m.group(1) if m else operand


def rule_queries() -> list[Query]:
    out = []
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            for i, operand in enumerate(split_top_level(rule["expr"])):
                out.append(Query(f"rules.yml {name} #{i + 1}", " ".join(signal(operand).split())))
    return out


def dashboard_queries() -> list[Query]:
    model = json.loads(DASHBOARD.read_text())
    out = []
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for var, value in VARIABLES.items():
                expr = expr.replace(var, value)
            assert "$" not in expr, f"unknown variable in {panel['title']!r}: {expr}"
            out.append(Query(f"dashboard {panel['title']!r} {target['refId']}", expr))
    for var in model["templating"]["list"]:
        if var["type"] == "query":
            expr = var["query"]["query"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            inner = re.fullmatch(r"label_values\((.*),\s*\w+\)", expr)
            assert inner, expr
            out.append(Query(f"dashboard variable {var['name']}", inner.group(1)))
    return out


def queries() -> list[Query]:
    return rule_queries() + dashboard_queries()


def exported() -> dict[str, frozenset[str]]:
    """Sample name -> the label names it can carry, for everything the app exports."""
    import quartproxy.factory  # noqa: F401  (registers every module's metrics)
    from quartproxy import metrics

    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("_count", "_sum", "_created", ""),
    }
    out: dict[str, frozenset[str]] = {}
    for collector in list(metrics.REGISTRY._collector_to_names):
        labels = frozenset(getattr(collector, "_labelnames", ()))
        for family in collector.describe() if hasattr(collector, "describe") else ():
            for suffix in suffixes.get(family.type, ("",)):
                extra = {"le"} if suffix == "_bucket" else set()
                out[family.name + suffix] = labels | extra
        for family in collector.collect():  # process_* and other custom collectors
            for s in family.samples:
                out.setdefault(s.name, frozenset())
                out[s.name] = out[s.name] | frozenset(s.labels)
    declared = re.compile(
        r'(Counter|Gauge)MetricFamily\(\s*"([a-z0-9_]+)".*?labels=\[([^\]]*)\]', re.S
    )
    for path in (ROOT / "quartproxy").rglob("*.py"):
        for kind, name, labels in declared.findall(path.read_text()):
            names = frozenset(re.findall(r'"([a-z_]+)"', labels))
            out[name + ("_total" if kind == "Counter" else "")] = names
    out["up"] = frozenset()
    return out
