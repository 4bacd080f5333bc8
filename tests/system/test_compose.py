"""docker-compose.yml and .env.example: the Compose specification's schema, and consistency with
the service's own settings and commands, the Dockerfile and deploy/nginx.conf.

No container engine runs here; check-jsonschema (from PyPI, installed by `bash .ci/run`) checks
the schema, and a missing one fails the test rather than skipping it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml

from service.cli import main
from service.settings import Settings
from tests.support.deployfiles import (
    COMPOSE_FILE,
    NGINX_CONF,
    ROOT,
    Directive,
    command_of,
    dockerfile,
    env_example,
    environment_of,
    healthcheck_url,
    option,
    parse_nginx,
    raw_compose,
    references,
    resolved_compose,
    setting_names,
    the_server,
    upstream_servers,
)
from tests.support.docs import documentation
from tests.support.processes import require_tool

APP_SERVICES = ("migrate", "api1", "api2", "worker")
API_SERVICES = ("api1", "api2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as Compose sees it with a .env copied from .env.example."""
    return resolved_compose()


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return parse_nginx(NGINX_CONF.read_text())


def test_compose_file_matches_the_compose_specification(tmp_path: Path) -> None:
    checker = require_tool(
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
        "pgbouncer",
        "minio",
        "migrate",
        *API_SERVICES,
        "worker",
        "lb",
        "prometheus",
    }


def test_prometheus_scrapes_every_api_replica_and_the_worker(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    port = int(option(command_of(services["worker"]), "--metrics-port"))
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    api_ports = {int(option(command_of(services[n]), "--port")) for n in API_SERVICES}
    assert targets == {f"{n}:{p}" for n in API_SERVICES for p in api_ports} | {f"worker:{port}"}


def test_depends_on_targets_exist_with_the_right_conditions(compose: dict[str, Any]) -> None:
    services = compose["services"]
    expected = {
        "pgbouncer": {"postgres": "service_healthy"},
        "migrate": {"postgres": "service_healthy", "minio": "service_healthy"},
        "api1": {"migrate": "service_completed_successfully", "pgbouncer": "service_healthy"},
        "api2": {"migrate": "service_completed_successfully", "pgbouncer": "service_healthy"},
        "worker": {"migrate": "service_completed_successfully", "pgbouncer": "service_healthy"},
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

    # Sessions go to PostgreSQL itself; everything else through PgBouncer in transaction mode.
    db = urlsplit(settings.session_database_url)
    postgres = environment_of(services["postgres"])
    assert db.scheme in ("postgresql", "postgres")
    assert db.hostname == "postgres" and db.hostname in services
    assert (db.port or 5432) == 5432
    assert db.username == postgres["POSTGRES_USER"] == example["POSTGRES_USER"]
    assert db.password == postgres["POSTGRES_PASSWORD"] == example["POSTGRES_PASSWORD"]
    assert db.path == "/" + postgres["POSTGRES_DB"]
    pooled = urlsplit(settings.database_url)
    bouncer = environment_of(services["pgbouncer"])
    assert settings.database_pooled
    assert pooled.hostname == "pgbouncer" and pooled.port == int(bouncer["LISTEN_PORT"])
    assert (pooled.username, pooled.password) == (db.username, db.password)
    assert pooled.path == db.path == "/" + bouncer["DB_NAME"]
    assert bouncer["POOL_MODE"] == "transaction"
    assert (bouncer["DB_HOST"], int(bouncer["DB_PORT"])) == ("postgres", 5432)
    assert (bouncer["DB_USER"], bouncer["DB_PASSWORD"]) == (db.username, db.password)

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
    # Media go from MinIO through nginx: the load balancer reaches MinIO, never PostgreSQL.
    assert settings.media_delivery == "accel"
    lb_networks = set(services["lb"]["networks"])
    assert lb_networks & set(minio["networks"]), "nginx cannot fetch accel media from MinIO"
    assert not lb_networks & set(services["postgres"]["networks"])
    # The image sets RECORDINGS_FFMPEG to its own ffmpeg; compose must not point elsewhere.
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
    for name in ("postgres", "minio", "lb", "prometheus"):
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
    assert f"recordings {subcommand}" in documentation(), (
        f"the documentation says nothing of `recordings {subcommand}`"
    )


def test_the_connection_budget_adds_up(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services = compose["services"]
    for name in list(os.environ):
        if name.startswith("RECORDINGS_"):
            monkeypatch.delenv(name)
    for key, value in environment_of(services["api1"]).items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    bouncer = environment_of(services["pgbouncer"])
    workers = ["worker"]
    # Clients of PgBouncer: every replica's and the worker's pool, all full at once.
    clients = (len(API_SERVICES) + len(workers)) * settings.database_pool_size
    assert clients <= int(bouncer["MAX_CLIENT_CONN"])
    # Connections to PostgreSQL: PgBouncer's, each process's session pool (one per ffmpeg run
    # and the retention pass), the worker's two LISTENs, and `recordings migrate`.
    sessions = settings.ffmpeg_max_processes + 1
    direct = (
        int(bouncer["MAX_DB_CONNECTIONS"])
        + len(API_SERVICES) * sessions
        + len(workers) * (sessions + 2)
        + 1
    )
    assert int(bouncer["DEFAULT_POOL_SIZE"]) <= int(bouncer["MAX_DB_CONNECTIONS"])
    # PostgreSQL's default max_connections, less its 3 reserved for superusers.
    assert "command" not in services["postgres"]
    assert direct <= 100 - 3
