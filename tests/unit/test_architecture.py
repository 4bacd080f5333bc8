"""The import graph of service/, storage/ and db/ (read with ast, nothing imported): layers point
one way, the core never imports a face or the HTTP plumbing nor the composition root, faces stay
apart, the dev stack stays out. And the tests import their helpers from tests.support, never
from a conftest."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("service", "storage", "db")
CORE = (
    "service.recordings",
    "service.ingest",
    "service.mp3",
    "service.peaks",
    "service.audio",
    "service.accounts",
    "service.callbacks",
    "service.encryption",
    "service.settings",
    "service.errors",
    "service.sids",
    "service.timestamps",
    "service.logs",
    "service.metrics",
    "service.services",
    "service.migrate",
)
FACES = "service.faces"
# The composition root: it builds the long-lived clients and the core objects over them, so it
# imports the core; the core is handed what it uses and never imports it back.
COMPOSITION_ROOT = "service.services"
# What may import it: each process's entry (the API, the worker, `recordings migrate`, the
# Twilio importer's run, which opens its own clients as the worker does) and what sits above the
# core (the commands, the HTTP plumbing, the faces).
ABOVE_THE_ROOT = (
    "service.app",
    "service.worker",
    "service.migrate",
    "service.imports",
    "service.cli",
    "service.http",
    "service.faces",
)
# The ingest answer is the 2008 representation: its responses and its OpenAPI schemas.
ALLOWED_FACE_IMPORTS = {
    ("service.faces.ingest", "service.faces.v2008"),
    # The accounts domain answers errors as the 2010 API does (Twilio's JSON error).
    ("service.faces.v1", "service.faces.v2010"),
}
# `recordings dev`, registered only where the dev stack is importable (a source checkout).
ALLOWED_DEVSTACK_IMPORTS = {("service.cli", "devstack.cli")}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    lazy: bool  # inside a function, so run only when it is called


def module_names(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> Iterator[Import]:
    """What ``name`` imports: ``from pkg import mod`` counts as importing pkg.mod, not pkg."""
    tree = ast.parse(path.read_text(), str(path))
    lazy_lines = {
        node.lineno
        for func in ast.walk(tree)
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef))
        for node in ast.walk(func)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    }
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([node.module] if node.module else [])])
            submodules = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
            targets = submodules if len(submodules) == len(node.names) else [base, *submodules]
        for target in targets:
            yield Import(name, target, node.lineno, node.lineno in lazy_lines)


def import_graph(root: Path, packages: tuple[str, ...] = LAYERS) -> list[Import]:
    modules = module_names(root, packages)
    return [edge for name, path in modules.items() for edge in imports_of(name, path, set(modules))]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def face_of(name: str) -> str | None:
    """The face package a module belongs to (service.faces itself is none)."""
    parts = name.split(".")
    return ".".join(parts[:3]) if within(name, FACES) and len(parts) > 2 else None


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    nodes = set(graph) | {m for targets in graph.values() for m in targets}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def violations(edges: list[Import]) -> list[str]:
    """Every import that breaks a layering rule, as readable lines."""
    broken = []
    for e in edges:
        where = f"{e.importer}:{e.line} imports {e.imported}"
        top = e.importer.split(".")[0]
        if top in ("db", "storage") and within(e.imported, "service"):
            broken.append(f"{where}: {top} never imports service")
        if any(within(e.importer, core) for core in CORE) and (
            within(e.imported, "service.http") or within(e.imported, FACES)
        ):
            broken.append(f"{where}: the core never imports the HTTP plumbing or a face")
        if (
            within(e.imported, COMPOSITION_ROOT)
            and not within(e.importer, COMPOSITION_ROOT)
            and not any(within(e.importer, above) for above in ABOVE_THE_ROOT)
        ):
            broken.append(f"{where}: the core never imports the composition root")
        if within(e.importer, "service.http") and within(e.imported, FACES):
            broken.append(f"{where}: service.http never imports a face")
        importer_face, imported_face = face_of(e.importer), face_of(e.imported)
        if (
            importer_face
            and imported_face
            and importer_face != imported_face
            and (importer_face, imported_face) not in ALLOWED_FACE_IMPORTS
        ):
            broken.append(f"{where}: a face never imports another face")
        if within(e.imported, "devstack"):
            allowed = (e.importer, e.imported) in ALLOWED_DEVSTACK_IMPORTS and e.lazy
            if not allowed:
                broken.append(f"{where}: the dev stack is never imported by the runtime")
    return broken


@pytest.fixture(scope="module")
def graph() -> list[Import]:
    return import_graph(ROOT)


def test_the_graph_is_read(graph: list[Import]) -> None:
    # Known edges of each kind, so that a parser that finds nothing cannot pass the rules below.
    pairs = {(e.importer, e.imported) for e in graph}
    assert ("service.recordings.paging", "db.recordings") in pairs
    assert ("service.faces.v2008.responses", "service.faces.v2008.representations") in pairs
    assert ("service.faces.ingest.openapi", "service.errors") in pairs  # from service import errors
    assert ("service.app", "service.faces.v2008") in pairs
    assert ("service.services", "service.mp3.transcoder") in pairs
    assert len(pairs) > 100


def test_there_is_no_import_cycle(graph: list[Import]) -> None:
    assert cycles(graph) == []


def test_no_layering_rule_is_broken(graph: list[Import]) -> None:
    assert violations(graph) == []


def test_the_allowances_are_still_needed(graph: list[Import]) -> None:
    face_pairs = {(face_of(e.importer), face_of(e.imported)) for e in graph}
    assert ALLOWED_FACE_IMPORTS <= face_pairs, "drop an allowance nothing uses any more"
    devstack = [e for e in graph if within(e.imported, "devstack")]
    assert {(e.importer, e.imported) for e in devstack} == ALLOWED_DEVSTACK_IMPORTS
    assert all(e.lazy for e in devstack)
    root_users = {e.importer for e in graph if within(e.imported, COMPOSITION_ROOT)}
    for above in ABOVE_THE_ROOT:
        assert any(within(user, above) for user in root_users), f"drop {above}"
    cli = (ROOT / "service" / "cli" / "__init__.py").read_text()
    assert 'importlib.util.find_spec("devstack")' in cli


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checks_catch_what_they_forbid(tmp_path: Path) -> None:
    """The rules above, run on a small tree that breaks each of them once."""
    write(
        tmp_path,
        {
            "db/__init__.py": "",
            "db/rows.py": "from service.errors import NotFound\n",
            "storage/__init__.py": "",
            "storage/client.py": "import devstack.servers\n",
            "service/__init__.py": "",
            "service/errors.py": "from service.http import render\n",
            "service/http/__init__.py": "from .render import x\n",
            "service/http/render.py": "from service.faces.v2008 import routes\n",
            "service/faces/__init__.py": "",
            "service/faces/v2008/__init__.py": "",
            "service/faces/v2008/routes.py": "from service.faces.health import probes\n",
            "service/faces/health/__init__.py": "",
            "service/faces/health/probes.py": "from service.faces.v2008.routes import r\n",
            "service/faces/ingest/__init__.py": "",
            "service/faces/ingest/routes.py": "from service.faces.v2008 import routes\n",
            "service/cli/__init__.py": "def dev():\n    from devstack.cli import dev\n",
            "service/recordings/__init__.py": "",
            "service/recordings/gc.py": "from .. import errors\nfrom ..faces import v2008\n",
            "service/services.py": "from service.peaks import jobs\n",
            "service/app.py": "from service.services import open_services\n",
            "service/peaks/__init__.py": "",
            "service/peaks/jobs.py": "from service import services\n",
        },
    )
    edges = import_graph(tmp_path)
    assert cycles(edges) == [
        ["service.faces.health.probes", "service.faces.v2008.routes"],
        ["service.peaks.jobs", "service.services"],
    ]
    broken = "\n".join(violations(edges))
    assert "db.rows:1 imports service.errors: db never imports service" in broken
    assert "storage.client:1 imports devstack.servers: the dev stack" in broken
    assert "service.errors:1 imports service.http.render: the core never" in broken
    assert "service.recordings.gc:2 imports service.faces.v2008: the core never" in broken
    assert "service.http.render:1 imports service.faces.v2008.routes: service.http never" in broken
    assert "service.faces.v2008.routes:1 imports service.faces.health.probes: a face" in broken
    assert "service.peaks.jobs:1 imports service.services: the core never imports the" in broken
    assert "service.faces.health.probes:1 imports service.faces.v2008.routes: a face" in broken
    # The allowances: ingest on 2008, and the lazy `recordings dev`; relative imports resolved.
    assert "service.faces.ingest" not in broken
    assert "service.cli" not in broken
    assert "service.app" not in broken
    assert ("service.recordings.gc", "service.errors") in {(e.importer, e.imported) for e in edges}
    assert len(violations(edges)) == 8


def test_tests_import_helpers_from_support_not_from_a_conftest() -> None:
    tests = ROOT / "tests"
    offenders = []
    for path in sorted(tests.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.split(".")[-1] == "conftest" or ".conftest." in n for n in names):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == [], "import helpers from tests.support instead"
    support = [p for p in (tests / "support").glob("*.py") if "pytest.fixture" in p.read_text()]
    assert support == [], "tests/support holds plain helpers; fixtures live in conftest.py files"


def test_the_callbacks_core_holds_no_web_framework(graph: list[Import]) -> None:
    # Delivery speaks HTTP as a client (httpx); parsing requests is the ingest face's job.
    framework = ("fastapi", "starlette", "uvicorn")
    mine = [e for e in graph if within(e.importer, "service.callbacks")]
    assert mine, "service.callbacks is read"
    assert [e for e in mine if e.imported.split(".")[0] in framework] == []
