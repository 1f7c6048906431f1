"""The house rules, read from the import statements themselves (ast, not text): no import
cycles; adapters import neither spool/ nor SQLAlchemy; spool/ imports from hub/ only the
records it stores, the errors and the ports; hub/ imports adapters and spool only in its
composition root. docs/architecture.md draws the same picture."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hub", "adapters", "spool")
COMPOSITION_ROOT = "hub.app"
# What spool/ may take from hub/: the records it stores, the errors, the ports.
SPOOL_MAY_USE = {"hub.model", "hub.batches", "hub.mail", "hub.optouts", "hub.errors",
                 "hub.ports",
                 # webhook events are fanned out inside the spool's transactions: their
                 # types and bodies, and the ids of the outbox items it makes.
                 "hub.events", "hub.ids",
                 # so are the dialects' delivery-report pushes: which statuses each asks for.
                 "hub.pushes",
                 # idempotency keys: their records, and the error of a key no longer held.
                 "hub.idempotency",
                 # privacy (POPIA): what is held about a number, the privacy log.
                 "hub.privacy",
                 # CPA regulation 4 is applied in intake's commit and the claim's own
                 # transactions, as opt-outs are: the pure rule and the consent record.
                 "hub.cpa", "hub.consents",
                 # each running node's heartbeat row and what it holds (issue #16).
                 "hub.nodes",
                 # operators' logins, the credit ledger and the queue's minutes (issue #14).
                 "hub.operators"}
DATABASE_LIBRARIES = {"sqlalchemy", "alembic", "psycopg", "sqlite3"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


@cache
def imports(module: str) -> frozenset[str]:
    path = modules()[module]
    return imports_in(path.read_text(), module, path.name == "__init__.py")


def imports_in(source: str, module: str, is_package: bool = False) -> frozenset[str]:
    """Every module `source` imports, anywhere in it (function-level and TYPE_CHECKING
    imports included: a cycle hidden there is still a cycle)."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            # `from adapters.csv import decode` imports the module adapters.csv.decode;
            # the package itself counts only where a name is not one of its modules.
            submodules = {f"{base}.{a.name}" for a in node.names} & set(modules())
            names.update(submodules)
            if len(submodules) < len(node.names):
                names.add(base)
    return frozenset(n for n in names if n)


def internal(module: str) -> set[str]:
    return {n for n in imports(module) if n in modules() and n != module}


def forbidden(module: str, names: Iterable[str], banned: set[str]) -> list[str]:
    return [f"{module} imports {name}" for name in sorted(names)
            if any(name == b or name.startswith(b + ".") for b in banned)]


def offenders(prefix: str, banned: set[str], allow: frozenset[str] = frozenset()) -> list[str]:
    return [line for module in modules()
            if (module == prefix or module.startswith(prefix + ".")) and module not in allow
            for line in forbidden(module, imports(module), banned)]


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []
    found: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for name in sorted(graph.get(module, set())):
            if state.get(name) == 1:
                found.append(" -> ".join([*stack[stack.index(name):], name]))
            elif name not in state:
                visit(name)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return found


def test_there_are_no_import_cycles() -> None:
    assert cycles_in({m: internal(m) for m in modules()}) == []


def test_the_cycle_check_finds_a_cycle_like_the_old_csv_one() -> None:
    graph = {"adapters.csv_batch": {"adapters.csv_legacy", "hub.model"},
             "adapters.csv_legacy": {"adapters.csv_batch"}, "hub.model": set()}
    assert cycles_in(graph) == ["adapters.csv_batch -> adapters.csv_legacy -> "
                                "adapters.csv_batch"]


def test_adapters_import_neither_the_spool_nor_a_database_library() -> None:
    assert offenders("adapters", {"spool", *DATABASE_LIBRARIES}) == []


def test_spool_takes_from_hub_only_records_errors_and_ports() -> None:
    bad = [line for line in offenders("spool", {"hub"})
           if line.rpartition(" imports ")[2] not in SPOOL_MAY_USE]
    assert bad == []


def test_hub_imports_adapters_and_the_spool_only_in_the_composition_root() -> None:
    assert offenders("hub", {"adapters", "spool", *DATABASE_LIBRARIES},
                     allow=frozenset({COMPOSITION_ROOT})) == []


@pytest.mark.parametrize(("module", "source", "banned"), [
    ("adapters.http.fake", "from spool.store import SqlSpool\n", {"spool"}),
    ("adapters.csv.fake", "import sqlalchemy as sa\n", DATABASE_LIBRARIES),
    ("spool.fake", "from hub.intake import Intake\n", {"hub.intake"}),
    ("hub.fake", "def f() -> None:\n    from adapters.http import rest\n", {"adapters"}),
    ("hub.fake", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import spool\n",
     {"spool"}),
])
def test_the_layering_check_sees_a_planted_import(module: str, source: str,
                                                  banned: set[str]) -> None:
    # The checks above can fail: the same reading finds an import planted anywhere.
    assert forbidden(module, imports_in(source, module), banned)


def test_every_module_opens_with_a_docstring() -> None:
    missing = [m for m, path in modules().items()
               if "migrations" not in path.parts and ast.get_docstring(ast.parse(
                   path.read_text())) is None]
    assert missing == []
