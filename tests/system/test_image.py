"""The image, built from the Dockerfile as written (only PYTHON_IMAGE swapped for a local Debian
bookworm base) and run by podman: migrate, two API replicas behind deploy/nginx.conf, the worker
and an operator command, each with the deploy files' options (uid 10001, every capability
dropped, no-new-privileges, a read-only root with the manifests' tmpfs mounts), on the host's
network against the test's PostgreSQL and SeaweedFS on loopback."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.settings import Settings, settings_env
from service.sids import new_sid
from tests.support.clients import INGEST_TOKEN, Account
from tests.support.nginx import Proxy, nginx_proxy
from tests.support.podman import (
    Role,
    added_bytes,
    base_image,
    build_image,
    engine_env,
    logs,
    podman,
    run_once,
    running_container,
    state,
)
from tests.support.rows import fetch_rows
from tests.support.stack import make_settings
from tests.support.wavs import noise_wav

IMAGE = "localhost/recordings:system-test"
MAX_ADDED_BYTES = 350 * 10**6
# The manifests' writable mounts: /tmp, and the spool the configmap's RECORDINGS_TMP_DIR names.
SPOOL = "/var/tmp/recordings"
MIGRATE = Role(tmpfs=("/tmp",))
LONG_RUNNING = Role(tmpfs=("/tmp", SPOOL))
# docker-compose.yml's: the image's writable root, uploads spooled to the system temp dir.
COMPOSE = Role(tmpfs=(), read_only=False)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return engine_env(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="module")
def base(engine: dict[str, str]) -> str:
    return base_image(engine)


@pytest.fixture(scope="module")
def image(engine: dict[str, str], base: str) -> str:
    build_image(engine, base, IMAGE)
    return IMAGE


def _database(postgres: EmbeddedPostgres) -> str:
    """A new, empty database of the test's PostgreSQL: its DSN."""
    name = "image_" + secrets.token_hex(4)

    async def go() -> None:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            await conn.execute(f"CREATE DATABASE {name}")
        finally:
            await conn.close()

    asyncio.run(go())
    return postgres.dsn.rsplit("/", 1)[0] + "/" + name


def container_env(settings: Settings) -> dict[str, str]:
    """The settings as the containers get them: the image's own ffmpeg, the manifests' spool."""
    env = settings_env(settings)
    del env["RECORDINGS_FFMPEG"]
    env.pop("RECORDINGS_TMP_DIR", None)
    env["RECORDINGS_TMP_DIR"] = SPOOL
    env["RECORDINGS_WORKER_METRICS_HOST"] = "127.0.0.1"
    return env


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    migrated: str
    replicas: list[str]
    ports: list[int]
    worker: str
    proxy: Proxy


def serve(port: int) -> list[str]:
    return ["recordings", "serve", "--host", "127.0.0.1", "--port", str(port)]


def wait_until(check: object, what: str, timeout: float = 60) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def stack(
    engine: dict[str, str],
    image: str,
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    settings = make_settings(
        postgres,
        s3,
        database_url=_database(postgres),
        s3_bucket="image-" + secrets.token_hex(4),
        transcode_on_ingest=True,
        media_delivery="accel",
    )
    env = container_env(settings)
    migrated = run_once(engine, image, MIGRATE, env, ["recordings", "migrate"]).stdout
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        worker = stack.enter_context(
            running_container(
                engine,
                image,
                LONG_RUNNING,
                env,
                ["recordings", "worker", "--metrics-port", str(free_port())],
                stop_timeout=60,
            )
        )
        replicas = [
            stack.enter_context(running_container(engine, image, LONG_RUNNING, env, serve(port)))
            for port in ports
        ]
        for name, port in zip(replicas, ports, strict=True):
            wait_until(lambda port=port: healthy(port), f"{name} never ready: {logs(engine, name)}")
        proxy = stack.enter_context(nginx_proxy(tmp_path_factory.mktemp("lb"), ports))
        yield Stack(settings, env, migrated, replicas, ports, worker, proxy)


def test_the_image_adds_at_most_350_mb_to_its_base(
    engine: dict[str, str], image: str, base: str
) -> None:
    added = added_bytes(engine, image, base)
    print(f"the image adds {added / 1e6:.0f} MB to its base")
    assert added <= MAX_ADDED_BYTES, podman(engine, "history", image).stdout
    # The Dockerfile's HEALTHCHECK survives the build (the docker format keeps it).
    assert healthcheck(engine, image)[0] == "CMD"


def test_migrate_makes_the_schema_the_job_queue_and_the_bucket(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    assert "migration 0001_initial" in stack.migrated
    assert "job queue tables" in stack.migrated
    assert f"bucket {stack.settings.s3_bucket}" in stack.migrated
    # Run again (every rollout does): nothing left to do, and it says so without failing.
    again = run_once(engine, image, MIGRATE, stack.env, ["recordings", "migrate"])
    assert "migration" not in again.stdout and "bucket" not in again.stdout


def operator_account(engine: dict[str, str], image: str, stack: Stack) -> Account:
    made = run_once(
        engine, image, MIGRATE, stack.env, ["recordings", "accounts", "create", "--json"]
    )
    created = json.loads(made.stdout)
    return Account(created["account_sid"], created["auth_token"])


def test_an_operator_command_makes_an_account_the_replicas_accept(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    account = operator_account(engine, image, stack)
    headers = {"Authorization": account.basic_auth}
    status, _, body = stack.proxy.request("GET", f"{account.base}.json", headers)
    assert status == 200, body
    assert json.loads(body)["recordings"] == []
    status, _, _ = stack.proxy.request(
        "GET", f"{account.base}.json", {"Authorization": "Basic eA=="}
    )
    assert status == 401


def test_ingest_wav_mp3_peaks_and_a_page_through_the_load_balancer(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    account = operator_account(engine, image, stack)
    wav = noise_wav(8000 * 4, seed=23)
    status, _, body = stack.proxy.request(
        "POST",
        f"/internal/Accounts/{account.sid}/Recordings.json?CallSid={new_sid('CA')}",
        {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "audio/x-wav"},
        wav,
    )
    assert status == 201, body
    sid = json.loads(body)["sid"]

    # The worker container makes the MP3 and the peaks the ingest queued.
    dsn = stack.settings.database_url
    wait_until(
        lambda: fetch_rows(
            dsn, "SELECT 1 FROM recordings WHERE sid = $1 AND mp3_key IS NOT NULL", sid
        ),
        f"no MP3 from the worker: {logs(engine, stack.worker)}",
    )
    wait_until(
        lambda: fetch_rows(
            dsn, "SELECT 1 FROM recording_peaks WHERE sid = $1 AND peaks_key IS NOT NULL", sid
        ),
        f"no peaks from the worker: {logs(engine, stack.worker)}",
    )

    status, headers, body = stack.proxy.request("GET", f"{account.base}/{sid}.wav")
    assert (status, headers["content-type"], body) == (200, "audio/x-wav", wav)
    status, headers, body = stack.proxy.request(
        "GET", f"{account.base}/{sid}.wav", {"Range": "bytes=0-43"}
    )
    assert (status, body) == (206, wav[:44])
    status, headers, mp3 = stack.proxy.request("GET", f"{account.base}/{sid}.mp3")
    assert (status, headers["content-type"]) == (200, "audio/mpeg")
    assert mp3[:3] == b"ID3" or mp3[0] == 0xFF
    status, _, peaks = stack.proxy.request("GET", f"{account.base}/{sid}/Peaks.json")
    assert status == 200, peaks
    assert json.loads(peaks)["data"]
    status, headers, page = stack.proxy.request("GET", f"{account.base}/{sid}.html")
    assert (status, headers["content-type"].split(";")[0]) == (200, "text/html")
    assert sid.encode() in page
    status, _, listed = stack.proxy.request(
        "GET", f"{account.base}.json", {"Authorization": account.basic_auth}
    )
    assert [r["sid"] for r in json.loads(listed)["recordings"]] == [sid]
    # Both replicas answered some of these (least_conn spreads them): neither is a bystander.
    for name in stack.replicas:
        assert f"/Recordings/{sid}" in logs(engine, name), name


def proc_status(engine: dict[str, str], name: str) -> dict[str, str]:
    read = podman(engine, "exec", name, "python", "-c", "print(open('/proc/1/status').read())")
    return dict(line.split(":\t", 1) for line in read.stdout.splitlines() if ":\t" in line)


def test_every_container_runs_unprivileged_on_a_read_only_root(
    engine: dict[str, str], stack: Stack
) -> None:
    for name in (*stack.replicas, stack.worker):
        status = proc_status(engine, name)
        assert status["Uid"].split()[:2] == ["10001", "10001"], status["Uid"]
        assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
        write = podman(engine, "exec", name, "touch", "/app/x", check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr
        podman(engine, "exec", name, "touch", f"{SPOOL}/x", "/tmp/x")


def healthcheck(engine: dict[str, str], image: str) -> list[str]:
    found = podman(engine, "image", "inspect", "--format", "{{json .Config.Healthcheck}}", image)
    test = json.loads(found.stdout)["Test"]
    assert isinstance(test, list)
    return [str(t) for t in test]


def test_the_healthcheck_command_tells_a_live_api_from_none(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    kind, *command = healthcheck(engine, image)
    assert kind == "CMD" and ":8000/healthz" in command[-1]
    # On the host's network each replica has a port of its own: the same command, at its port.
    name, port = stack.replicas[0], stack.ports[0]
    live = [*command[:-1], command[-1].replace(":8000/", f":{port}/")]
    assert podman(engine, "exec", name, *live).returncode == 0
    dead = [*command[:-1], command[-1].replace(":8000/", f":{free_port()}/")]
    assert podman(engine, "exec", name, *dead, check=False).returncode != 0


def test_sigterm_lets_an_upload_under_way_finish_within_the_grace_period(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    account = operator_account(engine, image, stack)
    port = free_port()
    wav = noise_wav(8000 * 8, seed=5)
    with running_container(engine, image, LONG_RUNNING, stack.env, serve(port)) as name:
        wait_until(lambda: healthy(port), f"never ready: {logs(engine, name)}")
        conn = socket.create_connection(("127.0.0.1", port), timeout=60)
        with conn:
            target = f"/internal/Accounts/{account.sid}/Recordings.json?CallSid={new_sid('CA')}"
            head = (
                f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {INGEST_TOKEN}\r\nContent-Type: audio/x-wav\r\n"
                f"Content-Length: {len(wav)}\r\n\r\n"
            )
            conn.sendall(head.encode() + wav[: len(wav) // 2])
            # `podman stop` sends the image's STOPSIGNAL and waits for the grace period.
            stopped: list[subprocess.CompletedProcess[str]] = []
            stopper = threading.Thread(
                target=lambda: stopped.append(podman(engine, "stop", "--time", "40", name))
            )
            stopper.start()
            wait_until(
                lambda: "Shutting down" in logs(engine, name), f"no shutdown: {logs(engine, name)}"
            )
            conn.sendall(wav[len(wav) // 2 :])
            answer = conn.recv(65536).decode(errors="replace")
        stopper.join(timeout=60)
        assert answer.startswith("HTTP/1.1 201"), answer
        assert stopped and stopped[0].returncode == 0
        # uvicorn ends its graceful shutdown by raising the signal it was sent again, so the
        # process ends as the SIGTERM says (143), not killed once the grace period ran out (137).
        assert state(engine, name)["ExitCode"] == 128 + signal.SIGTERM, logs(engine, name)
        assert "Finished server process" in logs(engine, name)
    status, _, listed = stack.proxy.request(
        "GET", f"{account.base}.json", {"Authorization": account.basic_auth}
    )
    assert status == 200 and len(json.loads(listed)["recordings"]) == 1


def test_the_worker_stops_cleanly_on_sigterm(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    metrics = free_port()
    command = ["recordings", "worker", "--metrics-port", str(metrics)]
    with running_container(engine, image, LONG_RUNNING, stack.env, command) as name:
        wait_until(
            lambda: _answers(f"http://127.0.0.1:{metrics}/metrics"),
            f"no metrics: {logs(engine, name)}",
        )
        podman(engine, "stop", "--time", "60", name, timeout=90)
        assert state(engine, name)["ExitCode"] == 0, logs(engine, name)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_an_api_run_as_the_compose_file_runs_it_spools_uploads_to_tmp(
    engine: dict[str, str], image: str, stack: Stack
) -> None:
    account = operator_account(engine, image, stack)
    port = free_port()
    env = {k: v for k, v in stack.env.items() if k != "RECORDINGS_TMP_DIR"}
    wav = noise_wav(8000 * 2, seed=8)
    with running_container(engine, image, COMPOSE, env, serve(port)) as name:
        wait_until(lambda: healthy(port), f"never ready: {logs(engine, name)}")
        root = podman(engine, "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name)
        assert root.stdout.strip() == "false"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            response = http.post(
                f"/internal/Accounts/{account.sid}/Recordings.json",
                params={"CallSid": new_sid("CA")},
                content=wav,
                headers={"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "audio/x-wav"},
            )
            assert response.status_code == 201, response.text
    # Accel delivery: the bytes come through nginx, from storage.
    status, _, body = stack.proxy.request("GET", f"{account.base}/{response.json()['sid']}.wav")
    assert (status, body) == (200, wav)
