"""The image built and run by a real container engine: podman as root with runc, on the host's
network, with a Python base image made locally by debootstrap (no registry is reachable here).

The base image is kept in podman's own store under a tag that hashes its recipe, so a second run
on the same machine skips debootstrap; podman's layer cache does the same for the build itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.deployfiles import ROOT
from tests.support.processes import require_tool

# runc, since crun cannot start containers on these machines; no default ulimits, which a
# container without CAP_SYS_RESOURCE could not raise.
CONTAINERS_CONF = '[engine]\nruntime = "runc"\n\n[containers]\ndefault_ulimits = []\n'

SUITE = "bookworm"
# What python:3.11-slim-bookworm gives the Dockerfile: python3.11 with venv and pip (ensurepip),
# a `python` command, CA certificates.
BASE_PACKAGES = (
    "python3.11",
    "python3.11-venv",
    # python3.11-venv needs python3.11-distutils, a name only python3-distutils provides: apt
    # resolves it, debootstrap does not.
    "python3-distutils",
    "python-is-python3",
    "ca-certificates",
)
# The image's environment, as the official Python images set it (an imported image has none).
BASE_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)
# This machine's CA bundle (its egress to PyPI presents a certificate of its own CA), and pip told
# to use it: pip reads /etc/pip.conf, and its bundled certifi would not know that CA.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PIP_CONF = "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n"
# apt as Debian's official images set it up (debuerreotype): downloaded packages and the package
# caches deleted after each run, no translations. Without it an image keeps every .deb it installed.
APT_CONF = {
    "docker-clean": (
        'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb'
        ' /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };\n'
        'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
    ),
    "docker-no-languages": 'Acquire::Languages "none";\n',
    "docker-autoremove-suggests": 'Apt::AutoRemove::SuggestsImportant "false";\n',
}
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def mirror() -> str:
    """The Debian mirror this machine's apt uses for the suite (deb822 or one-line sources)."""
    sources = Path("/etc/apt")
    for path in sorted([*sources.glob("sources.list.d/*.sources"), sources / "sources.list"]):
        if not path.is_file():
            continue
        text = path.read_text()
        for stanza in re.split(r"\n\s*\n", text):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.+)$", stanza, re.M))
            if SUITE in fields.get("Suites", "").split() and fields.get("URIs"):
                return str(fields["URIs"]).split()[0].rstrip("/")
        for m in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M):
            if m[2] == SUITE:
                return m[1].rstrip("/")
    return DEFAULT_MIRROR


def engine_env(workdir: Path) -> dict[str, str]:
    """The environment podman runs in: this process's, with a containers.conf of the tests."""
    conf = workdir / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def podman(
    env: Mapping[str, str], *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """`podman ARGS`; with ``check``, it must succeed (its output in the failure)."""
    binary = require_tool("podman", "apt-get install -y podman runc")
    result = subprocess.run(
        [binary, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args[:3])}: {result.stderr[-4000:]}"
    return result


def base_recipe() -> str:
    return json.dumps(
        {
            "suite": SUITE,
            "mirror": mirror(),
            "packages": BASE_PACKAGES,
            "changes": BASE_CHANGES,
            "ca": hashlib.sha256(CA_BUNDLE.read_bytes()).hexdigest(),
            "pip": PIP_CONF,
            "apt": APT_CONF,
        },
        sort_keys=True,
    )


def base_image(env: Mapping[str, str]) -> str:
    """The local Python base image, made by debootstrap unless this recipe's is already stored."""
    tag = (
        "localhost/recordings-python-base:"
        + hashlib.sha256(base_recipe().encode()).hexdigest()[:16]
    )
    lock = Path(tempfile.gettempdir()) / "recordings-python-base.lock"
    with lock.open("w") as held:
        # One build at a time on this machine; whoever waited finds the image made.
        fcntl.flock(held, fcntl.LOCK_EX)
        if podman(env, "image", "exists", tag, check=False).returncode != 0:
            _debootstrap_base(env, tag)
    return tag


def _debootstrap_base(env: Mapping[str, str], tag: str) -> None:
    debootstrap = require_tool("debootstrap", "apt-get install -y debootstrap")
    root = Path(tempfile.mkdtemp(prefix="recordings-base-"))
    try:
        rootfs = root / "rootfs"
        subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                SUITE,
                str(rootfs),
                mirror(),
            ],
            check=True,
            capture_output=True,
            timeout=1800,
            stdin=subprocess.DEVNULL,
        )
        shutil.copyfile(CA_BUNDLE, rootfs / CA_BUNDLE.relative_to("/"))
        (rootfs / "etc" / "pip.conf").write_text(PIP_CONF)
        for name, text in APT_CONF.items():
            (rootfs / "etc" / "apt" / "apt.conf.d" / name).write_text(text)
        for cache in ("var/lib/apt/lists", "var/cache/apt/archives", "var/cache/apt"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        changes = [arg for change in BASE_CHANGES for arg in ("--change", change)]
        binary = require_tool("podman", "apt-get install -y podman runc")
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
        )
        imported = subprocess.run(
            [binary, "import", *changes, "-", tag],
            stdin=tar.stdout,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        assert tar.wait() == 0 and imported.returncode == 0, imported.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def build_image(env: Mapping[str, str], base: str, tag: str) -> None:
    """`podman build` of the Dockerfile as written, with only PYTHON_IMAGE given."""
    podman(
        env,
        "build",
        "--format",
        "docker",  # keeps HEALTHCHECK, which the OCI format has no field for
        "--network",
        "host",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--tag",
        tag,
        str(ROOT),
        timeout=1800,
    )


def added_bytes(env: Mapping[str, str], image: str, base: str) -> int:
    """How many bytes the image's layers add to those of its base."""
    sizes = [
        int(podman(env, "image", "inspect", "--format", "{{.Size}}", name).stdout)
        for name in (image, base)
    ]
    return sizes[0] - sizes[1]


@dataclass(frozen=True)
class Role:
    """How the deploy files run a container of the image: its user, capabilities, privileges,
    root filesystem and the writable directories they mount."""

    user: str = "10001:10001"
    tmpfs: tuple[str, ...] = ("/tmp",)
    read_only: bool = True

    def options(self) -> list[str]:
        options = [
            "--network",
            "host",
            "--user",
            self.user,
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
        ]
        if self.read_only:
            # Only the mounts the manifests give (no /run, /var/tmp of podman's own).
            options += ["--read-only", "--read-only-tmpfs=false"]
        for path in self.tmpfs:
            options += ["--tmpfs", f"{path}:rw,nosuid,nodev,mode=1777"]
        return options


def env_options(environment: Mapping[str, str]) -> list[str]:
    return [arg for name, value in environment.items() for arg in ("--env", f"{name}={value}")]


def run_once(
    env: Mapping[str, str],
    image: str,
    role: Role,
    environment: Mapping[str, str],
    command: list[str],
    *,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """A one-shot container (migrate, an operator command), removed when it exits."""
    name = "recordings-test-" + os.urandom(6).hex()
    try:
        return podman(
            env,
            "run",
            "--rm",
            "--name",
            name,
            *role.options(),
            *env_options(environment),
            image,
            *command,
            timeout=300,
            check=check,
        )
    finally:
        podman(env, "rm", "--force", "--ignore", name, check=False)


@contextmanager
def running_container(
    env: Mapping[str, str],
    image: str,
    role: Role,
    environment: Mapping[str, str],
    command: list[str],
    *,
    stop_timeout: int = 40,
) -> Iterator[str]:
    """A detached container for the length of the block: its name. It is removed afterwards,
    also when the block fails (its log is printed then, for the failure's report)."""
    name = "recordings-test-" + os.urandom(6).hex()
    try:
        podman(
            env,
            "run",
            "--detach",
            "--name",
            name,
            "--stop-timeout",
            str(stop_timeout),
            *role.options(),
            *env_options(environment),
            image,
            *command,
        )
        yield name
    except BaseException:
        print(logs(env, name))
        raise
    finally:
        podman(env, "rm", "--force", "--ignore", "--time", "5", name, check=False, timeout=60)


def logs(env: Mapping[str, str], name: str) -> str:
    run = podman(env, "logs", name, check=False)
    return run.stdout + run.stderr


def state(env: Mapping[str, str], name: str) -> dict[str, object]:
    """The container's State, as `podman inspect` gives it."""
    found = json.loads(podman(env, "inspect", "--format", "{{json .State}}", name).stdout)
    assert isinstance(found, dict)
    return found
