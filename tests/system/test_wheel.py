"""The wheel built from the repository holds the runtime alone: service, storage and db with
their migrations, and none of the dev stack, the tests or the benches.

(The Dockerfile's own install step, built from what its COPY lines take, is test_dockerfile's.)
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.deployfiles import ROOT, pyproject

RUNTIME = ("service", "storage", "db")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    dist = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (path,) = dist.glob("recordings-*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_every_runtime_module_and_migration(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == list(RUNTIME)
    for package in RUNTIME:
        modules = [p for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts]
        assert modules, package
        for path in modules:
            assert path.relative_to(ROOT).as_posix() in names
    migrations = sorted((ROOT / "db" / "migrations").glob("*.sql"))
    assert migrations
    for path in migrations:
        assert path.relative_to(ROOT).as_posix() in names, "a migration is missing from the wheel"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert re.search(r"^recordings = service\.cli:main$", wheel.read(entry_points).decode(), re.M)


def test_the_wheel_has_no_dev_stack_tests_or_benches(wheel: zipfile.ZipFile) -> None:
    top = {Path(name).parts[0] for name in wheel.namelist()}
    for absent in ("devstack", "tests", "bench"):
        assert (ROOT / absent).is_dir(), f"{absent}/ moved: update this test"
        assert absent not in top, f"{absent}/ is in the wheel"
    assert {t for t in top if not t.endswith(".dist-info")} == set(RUNTIME)


def test_the_wheel_holds_the_pages_templates_and_static_files(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    pages = ROOT / "service" / "faces" / "pages"
    files = [p for d in ("templates", "static") for p in (pages / d).iterdir()]
    assert len(files) >= 8
    for path in files:
        assert path.relative_to(ROOT).as_posix() in names, "the pages need it at run time"
