"""The layers of the tree, read from its imports (every module under neutrino/, with the
imports inside functions and under ``TYPE_CHECKING`` too).

- the services import each other without a cycle, between modules or between their
  packages (services/l2 -> services/l3 -> services/l2 is one too);
- the bus knows no service and nothing of the API or the agents' call handlers (rpc);
- nothing below the HTTP edge (services, drivers, db, schema, policy, bus, agent, linux,
  names, files) imports a web framework or HTTP client, nor neutrino.api / neutrino.rpc;
- drivers are below the services: they import none;
- only the agent (and ``neutrino.cli.instance``) touch the kernel layer, neutrino.linux,
  which itself imports nothing of neutrino but itself, names, files and errors.

A rule the current tree still breaks elsewhere is listed below as a known exception,
edge by edge, so that any new violation fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "neutrino"

#: packages below the HTTP edge
BELOW_API = ("neutrino.services", "neutrino.drivers", "neutrino.db", "neutrino.schema",
             "neutrino.policy", "neutrino.bus", "neutrino.agent", "neutrino.linux",
             "neutrino.names", "neutrino.files")
WEB = ("starlette", "uvicorn", "httptools", "h11", "requests")
#: what neutrino.linux may import of neutrino
LINUX_MAY_USE = ("neutrino.linux", "neutrino.names", "neutrino.files", "neutrino.errors")
#: importer -> imported: edges that break a rule today, outside this work's area, each
#: with the issue that removes it.  Empty is the goal; a listed edge that disappears
#: fails too (test_known_exceptions_still_exist), so the list never goes stale.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def parse_imports(name: str, source: str, is_package: bool = False) -> set[str]:
    """Every module the source of ``name`` imports, anywhere in it (``from pkg import
    mod`` counts as pkg.mod when mod is a module of ours, else as pkg)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules() else base)
    return found


@cache
def imports_of(name: str) -> frozenset[str]:
    path = modules()[name]
    return frozenset(parse_imports(name, path.read_text(), path.name == "__init__.py"))


def inside(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def violations(importers: Iterable[str], forbidden: Iterable[str],
               allowed: Iterable[str] = ()) -> list[tuple[str, str]]:
    forbidden, allowed = tuple(forbidden), tuple(allowed)
    out = []
    for importer in sorted(importers):
        for imported in sorted(imports_of(importer)):
            if inside(imported, forbidden) and not inside(imported, allowed) \
                    and (importer, imported) not in KNOWN_EXCEPTIONS:
                out.append((importer, imported))
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def service_modules() -> list[str]:
    return [m for m in modules() if inside(m, ["neutrino.services"])]


def package_of(name: str) -> str:
    return name if modules()[name].name == "__init__.py" else name.rsplit(".", 1)[0]


def test_the_walker_sees_imports_in_functions_and_relative_ones() -> None:
    """What the rules stand on."""
    source = ("import sqlalchemy\n"
              "from typing import TYPE_CHECKING\n"
              "if TYPE_CHECKING:\n    from neutrino.services.l2 import ports\n"
              "def f():\n    from neutrino.api import app\n"
              "def g():\n    from . import ipam\n    from ..core.quotas import Quotas\n")
    assert parse_imports("neutrino.services.l2.subnets", source) == {
        "sqlalchemy", "typing", "neutrino.services.l2.ports", "neutrino.api.app",
        "neutrino.services.l2.ipam", "neutrino.services.core.quotas"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_service_modules() -> None:
    mods = service_modules()
    graph = {m: {i for i in imports_of(m) if i in mods} for m in mods}
    assert cycles(graph) == []


def test_no_import_cycle_among_service_packages() -> None:
    mods = service_modules()
    graph: dict[str, set[str]] = {}
    for m in mods:
        for i in imports_of(m):
            if i in mods and package_of(i) != package_of(m):
                graph.setdefault(package_of(m), set()).add(package_of(i))
    assert cycles(graph) == []


def test_bus_knows_no_service_api_or_rpc() -> None:
    bus = [m for m in modules() if inside(m, ["neutrino.bus"])]
    assert violations(bus, ["neutrino.services", "neutrino.api", "neutrino.rpc"]) == []


def test_below_the_api_no_web_framework_nor_api_or_rpc() -> None:
    below = [m for m in modules() if inside(m, BELOW_API)]
    assert violations(below, [*WEB, "neutrino.api", "neutrino.rpc"]) == []


def test_drivers_import_no_service() -> None:
    drivers = [m for m in modules() if inside(m, ["neutrino.drivers"])]
    assert violations(drivers, ["neutrino.services"]) == []


def test_only_the_agent_touches_linux() -> None:
    others = [m for m in modules()
              if not inside(m, ["neutrino.agent", "neutrino.linux", "neutrino.cli.instance"])]
    assert violations(others, ["neutrino.linux"]) == []


def test_linux_imports_only_its_own_names_files_and_errors() -> None:
    linux = [m for m in modules() if inside(m, ["neutrino.linux"])]
    assert violations(linux, ["neutrino"], LINUX_MAY_USE) == []


def test_known_exceptions_still_exist() -> None:
    gone = [edge for edge in sorted(KNOWN_EXCEPTIONS) if edge[1] not in imports_of(edge[0])]
    assert gone == [], "these imports are gone: remove them from KNOWN_EXCEPTIONS"
