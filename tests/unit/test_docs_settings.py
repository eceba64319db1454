"""The reference pages stay complete: every setting of quartproxy/config.py is in
docs/settings.md with its true default, nothing documented there is gone from the code, every
error code the package can answer with is in the error table of docs/api.md, and every route
of the app is in its endpoint table."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path
from typing import Any

from quartproxy import config, errors
from quartproxy.core.limits import Rate
from tests.docs_support import DOCS, ROOT, code_names, table_rows

SETTINGS_MD = DOCS / "settings.md"
API_MD = DOCS / "api.md"
CONFIG_SOURCE = Path(config.__file__).read_text(encoding="utf-8")

# Fields of Settings that are not read from the environment. Each is checked below to really
# not be an environment variable, so this list cannot hide a forgotten setting.
NOT_FROM_ENVIRONMENT = {"health_cache_seconds", "demo", "sites"}

# The codes of the public contract (its "Errors" section). The contract lives outside the
# repository, so its list is repeated here; docs/api.md must document each one.
CONTRACT_CODES = {
    "bad_request", "payload_too_large", "unsupported_media_type", "origin_not_allowed",
    "unauthorized", "session_mismatch", "forbidden", "rate_limited", "busy", "blocked",
    "not_found", "upstream_unavailable", "upstream_timeout", "upstream_error",
    "store_unavailable", "shutting_down", "internal",
}  # fmt: skip

REQUIRED = {
    "JWT_SECRET_KEY": "j" * 32,
    "SESSION_SECRET_KEY": "s" * 32,
    "N8N_WEBHOOK_URL": "https://n8n.internal/webhook/chat",
    "ALLOWED_ORIGINS": "https://shop.example.com",
}


def setting_fields() -> list[str]:
    """Field names of the Settings object, whether a dataclass or a pydantic model."""
    settings_cls: Any = config.Settings
    if dataclasses.is_dataclass(settings_cls):
        return [f.name for f in dataclasses.fields(settings_cls)]
    return list(settings_cls.model_fields)


def variables_in_config_source() -> set[str]:
    """Every quoted environment-variable name in config.py (`"RATE_LIMIT_IP"`, `"DEBUG"`)."""
    names = set(re.findall(r"[\"']([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)[\"']", CONFIG_SOURCE))
    return names | ({"DEBUG"} if re.search(r"[\"']DEBUG[\"']", CONFIG_SOURCE) else set())


def environment_settings() -> set[str]:
    """The settings table of config.py (fields made with `setting()`), and any variable name
    quoted in its source (a setting read by hand)."""
    return set(config.environment_settings()) | variables_in_config_source()


def documented_settings() -> dict[str, str]:
    """name -> default cell, from the setting tables of docs/settings.md (the sections before
    "Other environment variables", which lists variables read outside config.py)."""
    text = SETTINGS_MD.read_text(encoding="utf-8")
    text = text.split("## Other environment variables")[0]
    out: dict[str, str] = {}
    for cells in table_rows(text):
        if len(cells) < 3 or cells[0] in ("variable", "") or set(cells[0]) <= {"-", ":"}:
            continue
        for name in code_names(cells[0]):
            out[name] = cells[-1]
    return out


def test_every_setting_in_config_is_documented() -> None:
    documented = documented_settings()
    missing = sorted(environment_settings() - set(documented))
    assert not missing, f"settings missing from docs/settings.md: {missing}"


def test_every_documented_setting_exists() -> None:
    stale = sorted(set(documented_settings()) - environment_settings())
    assert not stale, f"docs/settings.md documents settings config.py does not read: {stale}"


def test_fields_said_not_to_be_settings_are_not_read_from_the_environment() -> None:
    table = {name.lower() for name in config.environment_settings()}
    assert set(setting_fields()) - table == NOT_FROM_ENVIRONMENT
    for name in NOT_FROM_ENVIRONMENT:
        assert f'"{name.upper()}"' not in CONFIG_SOURCE, f"{name.upper()} is a setting now"


def test_the_table_defaults_are_what_an_empty_environment_gives() -> None:
    """One declaration per setting: the default in the table is the value load_settings gives
    when the variable is unset (LOG_FORMAT's depends on DEBUG, see config.load_settings)."""
    settings = config.load_settings(REQUIRED)
    for name, f in config.environment_settings().items():
        if name not in REQUIRED:
            assert getattr(settings, f.name) == f.default, name


def _documented_default(cell: str) -> str | None:
    """The first inline-code value of a default cell, or None for "required"/"none"."""
    names = code_names(cell)
    return names[0] if names else None


def _equal(value: object, documented: str) -> bool:
    if isinstance(value, bool):
        return documented == str(value).lower()
    if isinstance(value, Rate):
        return Rate.parse(documented) == value
    if isinstance(value, int | float):
        return float(documented) == float(value)
    if isinstance(value, frozenset):  # a comma-separated list, order free
        return value == frozenset(documented.split(","))
    return str(value) == documented


def test_documented_defaults_are_the_real_defaults() -> None:
    settings = config.load_settings(REQUIRED)
    wrong = []
    checked = 0
    for name, cell in documented_settings().items():
        default = _documented_default(cell)
        if name in REQUIRED:
            assert "required" in cell, f"{name} is required; docs/settings.md says {cell!r}"
            continue
        value = getattr(settings, name.lower())
        if default is None:
            # "none": not set at all.
            if value not in (None, (), ""):
                wrong.append((name, cell, value))
            continue
        checked += 1
        if not _equal(value, default):
            wrong.append((name, cell, value))
    assert not wrong, f"documented defaults that are not the real ones: {wrong}"
    assert checked >= 25


def test_required_settings_are_the_ones_the_docs_say() -> None:
    for name in REQUIRED:
        partial = {k: v for k, v in REQUIRED.items() if k != name}
        try:
            config.load_settings(partial)
        except config.ConfigError as exc:
            assert exc.variable == name
        else:
            raise AssertionError(f"{name} is documented as required but has a default")


def codes_used_in_package() -> set[str]:
    """Every error code the package can put into an answer or a final event: the code
    arguments of ApiError and of the pure modules' error values (Error,
    BadFrame), any `code=` keyword, and the codes for statuses Quart raises itself."""
    position = {"ApiError": 1, "Error": 0, "BadFrame": 0}
    codes = {code for code, _ in errors.STATUS_CODES.values()}
    for path in sorted((ROOT / "quartproxy").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            args: list[ast.expr] = []
            if name in position and len(node.args) > position[name]:
                args.append(node.args[position[name]])
            args += [k.value for k in node.keywords if k.arg == "code"]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    codes.add(arg.value)
    return codes


def documented_codes() -> set[str]:
    """Codes in the first column of the error table of docs/api.md."""
    text = API_MD.read_text(encoding="utf-8")
    errors_section = text.split("\n## Errors", 1)[1].split("\n## ", 1)[0]
    out: set[str] = set()
    for cells in table_rows(errors_section):
        if cells and cells[0] not in ("code",):
            out.update(code_names(cells[0]))
    return out


def test_codes_found_in_the_package_are_real_codes() -> None:
    # Guards the scan itself: if the error classes were renamed it would find nothing.
    used = codes_used_in_package()
    assert {"origin_not_allowed", "session_mismatch", "upstream_timeout", "blocked"} <= used
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", code) for code in used), used


def test_every_error_code_used_in_the_package_is_documented() -> None:
    missing = sorted(codes_used_in_package() - documented_codes())
    assert not missing, f"error codes missing from the table in docs/api.md: {missing}"


def test_every_contract_code_is_documented() -> None:
    missing = sorted(CONTRACT_CODES - documented_codes())
    assert not missing, f"contract error codes missing from docs/api.md: {missing}"


def test_documented_codes_are_codes_of_the_contract_or_the_package() -> None:
    stale = sorted(documented_codes() - CONTRACT_CODES - codes_used_in_package())
    assert not stale, f"docs/api.md documents codes nothing uses: {stale}"


def test_documented_minimums_are_the_real_ones() -> None:
    """A default cell "`4000` (1)" says 1 is the smallest value accepted."""
    checked = 0
    for name, cell in documented_settings().items():
        m = re.search(r"\(([\d.]+)\)\s*$", cell)
        if not m:
            continue
        minimum = float(m.group(1))
        as_int = isinstance(getattr(config.load_settings(REQUIRED), name.lower()), int)
        lowest = str(int(minimum)) if as_int else m.group(1)
        below = str(int(minimum) - 1) if as_int else str(minimum / 2 if minimum else -1)
        config.load_settings({**REQUIRED, name: lowest})
        try:
            config.load_settings({**REQUIRED, name: below})
        except config.ConfigError as exc:
            assert exc.variable == name
        else:
            raise AssertionError(f"{name}={below} is accepted; docs/settings.md says ≥ {lowest}")
        checked += 1
    assert checked >= 15


def documented_endpoints() -> set[str]:
    """`METHOD /path` of every row of the endpoint table of docs/api.md."""
    text = API_MD.read_text(encoding="utf-8")
    section = text.split("\n## Endpoints", 1)[1].split("\n#", 1)[0]
    return {name for cells in table_rows(section) for name in code_names(cells[0])}


def test_every_route_of_the_app_is_documented() -> None:
    from quartproxy.factory import create_app

    app = create_app(config.load_settings(REQUIRED))
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        if path == "/static/{filename}":
            path = "/static/widget.js"
        if rule.websocket:
            routes.add(f"WS {path}")
            continue
        routes.update(f"{m} {path}" for m in rule.methods or () if m not in ("HEAD", "OPTIONS"))
    assert len(routes) >= 14
    missing = sorted(routes - documented_endpoints())
    assert not missing, f"routes missing from the endpoint table of docs/api.md: {missing}"
    stale = sorted(documented_endpoints() - routes - {"OPTIONS"})
    assert not stale, f"docs/api.md lists endpoints the app does not have: {stale}"
