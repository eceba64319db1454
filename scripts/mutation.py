"""Mutation testing of the security-critical pure modules: `python scripts/mutation.py`.

Each module in MODULES is mutated one change at a time (comparison, boolean operator, `not`,
arithmetic, constant, return value, raise/call deletion) and its fast unit tests are run against
every mutant; a mutant the tests do not notice "survives" and is printed with file:line.
Equivalent mutants (no observable change) are listed in tests/mutation_equivalents.txt with a
one-line reason and are not counted. Mutants that only change human text are never made:
docstrings, f-strings and string constants holding whitespace (messages) are left alone;
names, codes, header names and tokens (strings without whitespace) are mutated.

Why a script and not a tool: mutmut 3.8 was tried first on this layout and ran, but (a) it only
mutates code inside functions, so the module-level constants that carry policy here (the bot
weights, the 1.5-s threshold, the unit table of rate limits, the token leeway, the dataclass
default `64 * 1024`) are never mutated; (b) every mutant of the classmethod `Rate.parse` came
back "no tests" (not investigated further), and (c) it cannot leave out message-text mutants,
so the figures would be diluted by string edits. cosmic-ray (not tried) needs a session
database and starts a cold pytest per mutant, which here imports the whole app stack each time,
and has no message-text filter either. This script is stdlib only.

How a mutant runs: this process imports the heavy third-party packages once, then forks one
child per mutant (two at a time by default: the machine has two cores); the child puts the
mutated module into `sys.modules` before anything of quartproxy is imported and runs
`pytest -x -q -p no:cacheprovider <the module's unit test files>` in-process. A child that runs
past the timeout is killed and counted as killed (the mutant hangs the tests). Hypothesis runs
derandomized and without its example database, so the figures repeat.

    python scripts/mutation.py                      # all modules
    python scripts/mutation.py origins tokens -j 1  # some modules, one at a time
    python scripts/mutation.py --list limits        # the mutants, without running them
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib
import importlib.util
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.txt"
U = "tests/unit/"

# module (in quartproxy/core) -> its fast unit tests, example-based files first (so -x stops early)
MODULES: dict[str, list[str]] = {
    "origins": [
        U + "test_origins.py",
        U + "test_client_identity.py",
        U + "test_origins_properties.py",
    ],
    "tokens": [U + "test_tokens_boundaries.py", U + "test_tokens.py"],
    "limits": [
        U + "test_limits_exact.py",
        U + "test_limits_gcra.py",
        U + "test_limits_properties.py",
    ],
    "screening": [U + "test_screening_exact.py", U + "test_screening.py"],
    "messages": [
        U + "test_messages_boundaries.py",
        U + "test_messages.py",
        U + "test_messages_invisible.py",
        U + "test_messages_properties.py",
    ],
    # the message cleaning, moved out of messages.py (issue 13: bidi and zero-width characters)
    "text": [
        U + "test_text.py",
        U + "test_messages_invisible.py",
        U + "test_messages.py",
        U + "test_messages_boundaries.py",
    ],
    "numbers": [U + "test_numbers.py"],
    "events": [
        U + "test_resume_point.py",
        U + "test_events.py",
        U + "test_render_events.py",
        U + "test_n8n_parse.py",
    ],
    "http1": [U + "test_http1_boundaries.py", U + "test_http1.py", U + "test_http1_properties.py"],
    "n8n_parse": [
        U + "test_n8n_parse_boundaries.py",
        U + "test_n8n_parse.py",
        U + "test_n8n_parse_fuzz.py",
    ],
    "ws_protocol": [U + "test_ws_protocol_boundaries.py", U + "test_ws_protocol.py"],
    "body_drain": [U + "test_body_drain.py"],
}
PRELOAD = ["pytest", "trio", "pytest_trio", "hypothesis", "pydantic", "jwt", "httpx", "h11"]


def preload() -> None:
    """Import once, in the parent, what every child would import: the third-party packages
    and whatever tests/conftest.py pulls in (the app, Hypercorn, Quart...). Then forget the
    project's own modules, so each child imports them afresh around its mutant."""
    for name in PRELOAD:
        importlib.import_module(name)
    importlib.import_module("tests.support")
    for name in list(sys.modules):
        if name.split(".")[0] in ("quartproxy", "tests"):
            del sys.modules[name]


_CMP_SWAPS: dict[type, list[type]] = {
    ast.Lt: [ast.LtE, ast.GtE],
    ast.LtE: [ast.Lt, ast.Gt],
    ast.Gt: [ast.GtE, ast.LtE],
    ast.GtE: [ast.Gt, ast.Lt],
    ast.Eq: [ast.NotEq],
    ast.NotEq: [ast.Eq],
    ast.In: [ast.NotIn],
    ast.NotIn: [ast.In],
    ast.Is: [ast.IsNot],
    ast.IsNot: [ast.Is],
}
_BIN_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.Mult,
}


@dataclass(frozen=True)
class Mutant:
    module: str
    index: int  # position in the module's mutant list
    line: int
    source_line: str  # the line as written, stripped: the key of the equivalents list
    what: str  # "`a < b` -> `a <= b`"
    apply: Callable[[ast.Module], None]  # mutates a deep copy of the module's tree in place


# -- generation ---------------------------------------------------------------------------------


def _skipped_nodes(tree: ast.Module) -> set[int]:
    """ids of nodes never mutated: docstrings, annotations, f-strings, asserts, imports."""
    skip: set[int] = set()

    def all_of(node: ast.AST | None) -> None:
        if node is not None:
            skip.update(id(n) for n in ast.walk(node))

    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        docstring = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
        if docstring and isinstance(first.value.value, str):  # type: ignore[union-attr]
            all_of(first)
        if isinstance(node, ast.AnnAssign | ast.arg):
            all_of(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            all_of(node.returns)
        elif isinstance(node, ast.JoinedStr | ast.Assert | ast.Import | ast.ImportFrom):
            all_of(node)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for deco in node.decorator_list:  # dataclass flags, cache sizes: not behaviour
                all_of(deco)
    return skip


def _path_to(tree: ast.AST, target: ast.AST) -> list[tuple[str, int | None]]:
    """(field, index) steps from `tree` to `target`, to find the same node in a deep copy."""

    def walk(node: ast.AST, path: list[tuple[str, int | None]]) -> list | None:
        if node is target:
            return path
        for field, value in ast.iter_fields(node):
            if isinstance(value, ast.AST):
                found = walk(value, [*path, (field, None)])
                if found is not None:
                    return found
            elif isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, ast.AST):
                        found = walk(item, [*path, (field, i)])
                        if found is not None:
                            return found
        return None

    found = walk(tree, [])
    assert found is not None
    return found


def _follow(tree: ast.AST, path: list[tuple[str, int | None]]) -> ast.AST:
    node = tree
    for field, index in path:
        node = getattr(node, field) if index is None else getattr(node, field)[index]
    return node


def _show(node: ast.AST) -> str:
    text = ast.unparse(node).replace("\n", " ")
    return text if len(text) <= 70 else text[:67] + "..."


def _mutated_constant(value: object) -> list[object]:
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1] if value != 0 else [1]
    if isinstance(value, float):
        return [value + 1.0]
    if isinstance(value, str | bytes):
        if any(c.isspace() for c in (value if isinstance(value, str) else value.decode("latin-1"))):
            return []  # human text (a message): changing it is cosmetic
        return [value + ("X" if isinstance(value, str) else b"X")]
    return []


def generate(module: str) -> list[Mutant]:
    path = ROOT / "quartproxy" / "core" / f"{module}.py"
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source)
    skip = _skipped_nodes(tree)
    found: list[tuple[ast.AST, str, Callable[[ast.AST], None] | str]] = []

    def add(node: ast.AST, what: str, change: Callable[[ast.AST], None] | str) -> None:
        found.append((node, what, change))

    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                for new in _CMP_SWAPS.get(type(op), []):
                    alt = copy.deepcopy(node)
                    alt.ops[i] = new()

                    def change(n: ast.AST, i: int = i, new: type = new) -> None:
                        n.ops[i] = new()  # type: ignore[attr-defined]

                    add(node, f"`{_show(node)}` -> `{_show(alt)}`", change)
        elif isinstance(node, ast.BoolOp):
            new = ast.Or if isinstance(node.op, ast.And) else ast.And
            alt = copy.deepcopy(node)
            alt.op = new()
            add(
                node,
                f"`{_show(node)}` -> `{_show(alt)}`",
                lambda n, new=new: setattr(n, "op", new()),
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            add(node, f"`{_show(node)}` -> `{_show(node.operand)}`", "unwrap")
        elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _BIN_SWAPS:
            if (
                isinstance(node, ast.BinOp)
                and isinstance(node.op, ast.Mod)
                and isinstance(node.left, ast.Constant)
            ):
                continue  # b"%s" % ...: string formatting, not arithmetic
            new = _BIN_SWAPS[type(node.op)]
            alt = copy.deepcopy(node)
            alt.op = new()
            add(
                node,
                f"`{_show(node)}` -> `{_show(alt)}`",
                lambda n, new=new: setattr(n, "op", new()),
            )
        elif isinstance(node, ast.Constant):
            for value in _mutated_constant(node.value):
                add(
                    node,
                    f"`{node.value!r}` -> `{value!r}`",
                    lambda n, value=value: setattr(n, "value", value),
                )
        elif isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                add(
                    node,
                    f"`return {_show(node.value)}` -> `return None`",
                    lambda n: setattr(n, "value", ast.Constant(None)),
                )
        elif isinstance(node, ast.Raise) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
        ):
            add(node, f"`{_show(node)}` deleted", "delete")

    mutants: list[Mutant] = []
    seen: dict[tuple[str, str], int] = {}
    found.sort(key=lambda f: (getattr(f[0], "lineno", 0), getattr(f[0], "col_offset", 0)))
    for node, what, change in found:
        path_ = _path_to(tree, node)
        line = getattr(node, "lineno", 0)

        def apply(t: ast.Module, path_: list = path_, change=change) -> None:
            if callable(change):
                change(_follow(t, path_))
                return
            *parent, (field, index) = path_
            holder = _follow(t, parent)
            if change == "delete":  # a statement, replaced in its list by `pass`
                getattr(holder, field)[index] = ast.Pass()
                return
            node = _follow(t, path_)  # "unwrap": `not x` becomes `x`
            if index is None:
                setattr(holder, field, node.operand)  # type: ignore[attr-defined]
            else:
                getattr(holder, field)[index] = node.operand  # type: ignore[attr-defined]

        src_line = lines[line - 1].strip() if line else ""
        # the same mutation of the same line text elsewhere in the module: keyed "#2", "#3"...
        seen[(src_line, what)] = n = seen.get((src_line, what), 0) + 1
        if n > 1:
            src_line += f"  #{n}"
        mutants.append(Mutant(module, len(mutants), line, src_line, what, apply))
    return mutants


def compile_mutant(m: Mutant) -> types.CodeType:
    path = ROOT / "quartproxy" / "core" / f"{m.module}.py"
    tree = ast.parse(path.read_text())
    m.apply(tree)
    ast.fix_missing_locations(tree)
    return compile(tree, str(path), "exec")


# -- equivalents -------------------------------------------------------------------------------


def load_equivalents() -> dict[tuple[str, str, str], str]:
    """`module | source line (stripped) | mutation | reason`, one a line; # starts a comment."""
    out: dict[tuple[str, str, str], str] = {}
    if not EQUIVALENTS.exists():
        return out
    for raw in EQUIVALENTS.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in raw.split(" | ")]
        if len(parts) != 4 or not parts[3]:
            sys.exit(f"{EQUIVALENTS}: expected 'module | line | mutation | reason': {raw!r}")
        out[(parts[0], parts[1], parts[2])] = parts[3]
    return out


# -- running -----------------------------------------------------------------------------------


def _child(m: Mutant | None, tests: list[str]) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import hypothesis
    import pytest

    hypothesis.settings.register_profile(
        "mutation", database=None, derandomize=True, deadline=None, print_blob=False
    )
    hypothesis.settings.load_profile("mutation")
    if m is not None:
        name = f"quartproxy.core.{m.module}"
        package = importlib.import_module("quartproxy.core")
        path = ROOT / "quartproxy" / "core" / f"{m.module}.py"
        mod = types.ModuleType(name)
        mod.__file__ = str(path)
        mod.__package__ = "quartproxy.core"
        mod.__spec__ = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = mod
        try:
            exec(compile_mutant(m), mod.__dict__)
        except Exception:
            os._exit(97)  # the mutant breaks the import: every test of the module fails
        setattr(package, m.module, mod)
    code = pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests])
    os._exit(int(code))


def run_all(
    jobs: list[tuple[Mutant | None, list[str]]],
    parallel: int,
    timeout: float,
) -> Iterator[tuple[Mutant | None, str]]:
    """Yields (mutant, "killed" | "survived" | "timeout" | "error") as children finish."""
    pending = list(jobs)
    running: dict[int, tuple[Mutant | None, float]] = {}
    while pending or running:
        while pending and len(running) < parallel:
            m, tests = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                try:
                    _child(m, tests)
                finally:
                    os._exit(99)
            running[pid] = (m, time.monotonic())
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            now = time.monotonic()
            for p, (m, started) in list(running.items()):
                if now - started > timeout:
                    os.kill(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                    del running[p]
                    yield m, "timeout"
            time.sleep(0.02)
            continue
        if pid not in running:
            continue
        m, _ = running.pop(pid)
        code = os.waitstatus_to_exitcode(status)
        # pytest: 0 all passed, 1 some failed, 2 interrupted (a collection error); 97 (ours): the
        # mutated module raised while it was imported
        yield m, {0: "survived", 1: "killed", 2: "killed", 97: "killed"}.get(code, f"error({code})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"some of: {' '.join(MODULES)}")
    ap.add_argument("-j", "--jobs", type=int, default=2, help="mutants run at once (default 2)")
    ap.add_argument(
        "--timeout",
        type=float,
        default=0,
        help="seconds per mutant (default: 5 x the clean run, at least 20)",
    )
    ap.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    args = ap.parse_args()
    modules = args.modules or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        ap.error(f"unknown module(s) {unknown}; known: {list(MODULES)}")
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    equivalents = load_equivalents()
    used_equivalents: set[tuple[str, str, str]] = set()
    plan: dict[str, list[Mutant]] = {}
    for module in modules:
        plan[module] = []
        for m in generate(module):
            key = (m.module, m.source_line, m.what)
            if key in equivalents:
                used_equivalents.add(key)
            else:
                plan[module].append(m)
    if args.list:
        for module, ms in plan.items():
            for m in sorted(ms, key=lambda m: (m.line, m.index)):
                print(f"quartproxy/core/{module}.py:{m.line}: {m.what}")
        return
    preload()

    rows = []
    survivors: list[Mutant] = []
    for module in modules:
        tests = [t for t in MODULES[module] if (ROOT / t).exists()]
        started = time.monotonic()
        ((_, clean),) = list(run_all([(None, tests)], 1, 600))
        clean_seconds = time.monotonic() - started
        if clean != "survived":
            sys.exit(f"{module}: the unit tests fail on the unmutated code ({clean}): {tests}")
        timeout = args.timeout or max(20.0, 5 * clean_seconds)
        results = list(run_all([(m, tests) for m in plan[module]], args.jobs, timeout))
        killed = sum(1 for _, r in results if r in ("killed", "timeout"))
        errors = [(m, r) for m, r in results if r.startswith("error")]
        alive = sorted((m for m, r in results if r == "survived"), key=lambda m: (m.line, m.index))
        survivors += alive
        eq = sum(1 for k in used_equivalents if k[0] == module)
        total = len(results)
        pct = 100.0 * killed / total if total else 100.0
        rows.append((module, killed, total, pct, eq, len(errors), time.monotonic() - started))
        print(
            f"{module}: {killed}/{total} killed ({pct:.1f} %), {eq} equivalent, "
            f"{len(errors)} errors, {time.monotonic() - started:.0f} s",
            flush=True,
        )
        for m, r in errors:
            print(f"  {r}: quartproxy/core/{m.module}.py:{m.line}: {m.what}", flush=True)
        for m in alive:
            print(f"  survived: quartproxy/core/{m.module}.py:{m.line}: {m.what}", flush=True)

    print("\n| module | killed / mutants | killed % | equivalent (not counted) |")
    print("|---|---|---|---|")
    for module, killed, total, pct, eq, _, _ in rows:
        print(f"| `core/{module}.py` | {killed} / {total} | {pct:.1f} % | {eq} |")
    if survivors:
        print(f"\nSurvivors ({len(survivors)}):")
        for m in survivors:
            print(f"  quartproxy/core/{m.module}.py:{m.line}: {m.what}")
    stale = [k for k in equivalents if k[0] in modules and k not in used_equivalents]
    if stale:
        print("\nEquivalents that match no mutant any more (remove them):")
        for k in stale:
            print(f"  {' | '.join(k)}")
    below = [r[0] for r in rows if r[3] < 90.0]
    sys.exit(1 if below or stale else 0)


if __name__ == "__main__":
    main()
