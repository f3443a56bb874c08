"""The layering, read from the import graph (ast), not by grepping text.

Bottom up: domain modules → ``gridcore.store`` (persists) → ``gridcore.app`` (use
cases) → ``gridcore.cli`` and ``api/`` (translate). Imports point down.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Modules that compute on plain data: they never reach up to the store, the use cases,
# the command line or the web.
DOMAIN = ["_time", "errors", "crs", "codes", "sindex", "divisions", "components", "grid",
          "locate", "cases", "chiefs", "auth", "disputes", "heatmap", "maps", "census",
          "complaints", "open311", "_data", "worktime", "geojson"]
DRIVERS = {"sqlite3", "psycopg", "psycopg_pool"}
WEB = {"fastapi", "starlette", "api"}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, relative imports resolved, function bodies included."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _hits(imported: set[str], forbidden: set[str]) -> set[str]:
    return {m for m in imported if m.split(".")[0] in forbidden or m in forbidden
            or any(m.startswith(f + ".") for f in forbidden)}


def test_the_reader_resolves_relative_imports():
    got = imports_of(ROOT / "gridcore" / "store" / "_cases.py")
    assert "gridcore.cases" in got and "gridcore.store._base" in got


def test_the_command_line_imports_nothing_from_the_service():
    assert _hits(imports_of(ROOT / "gridcore" / "cli.py"), WEB) == set()


@pytest.mark.parametrize("path", sorted((ROOT / "gridcore").rglob("*.py")), ids=str)
def test_gridcore_never_imports_the_web(path):
    assert _hits(imports_of(path), WEB) == set()


@pytest.mark.parametrize("name", DOMAIN)
def test_domain_modules_import_no_store_use_case_or_driver(name):
    got = imports_of(ROOT / "gridcore" / f"{name}.py")
    up = {m for m in got if m.startswith(("gridcore.store", "gridcore.app", "gridcore.cli",
                                          "gridcore.sample"))}
    assert up == set() and _hits(got, DRIVERS) == set()


@pytest.mark.parametrize("path", sorted((ROOT / "gridcore" / "store").glob("*.py")), ids=str)
def test_the_store_does_not_reach_up(path):
    got = imports_of(path)
    assert {m for m in got if m.startswith(("gridcore.app", "gridcore.cli"))} == set()


def test_drivers_stay_inside_the_store():
    outside = [p for p in list((ROOT / "gridcore").rglob("*.py")) + list(
        (ROOT / "api").rglob("*.py")) if "store" not in p.relative_to(ROOT).parts]
    leaks = {str(p.relative_to(ROOT)): _hits(imports_of(p), DRIVERS) for p in outside}
    assert {k: v for k, v in leaks.items() if v} == {}


def test_routes_reach_the_store_only_through_its_package():
    for path in (ROOT / "api").rglob("*.py"):
        private = {m for m in imports_of(path) if m.startswith("gridcore.store._")
                   or m in ("gridcore.store.sqlite", "gridcore.store.postgres")}
        assert private == set(), path
