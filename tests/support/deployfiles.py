"""The deployment files and small parsers of them: .env.example and Compose's interpolation,
docker-compose.yml, deploy/nginx.conf, the Dockerfile and .dockerignore."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def canonical(requirement: str) -> str:
    """The normalised distribution name a requirement starts with."""
    m = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert m, requirement
    return re.sub(r"[-_.]+", "-", m.group(0)).lower()


# --- .env.example and compose interpolation ----------------------------------------------------


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


# --- docker-compose.yml --------------------------------------------------------------------------


def raw_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict)
    return data


def resolved_compose() -> dict[str, Any]:
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


# --- deploy/nginx.conf ---------------------------------------------------------------------------


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


# --- Dockerfile and .dockerignore ----------------------------------------------------------------


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
