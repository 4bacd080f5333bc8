"""Real servers for the tests: PostgreSQL, SeaweedFS S3, and the service itself, in-process under
uvicorn or as a `recordings serve` process, each on a free loopback port."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Self

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from db.migrations import apply_migrations
from devstack.dev import stack_settings
from devstack.pgbouncer import PgBouncer, running_pgbouncer
from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.app import create_app
from service.http.server import server_options
from service.mp3.queue import install_queue
from service.services import storage_config
from service.settings import Settings, settings_env
from storage.client import open_storage
from tests.support.clients import INGEST_TOKEN, SECRET_KEY
from tests.support.partitioning import partition_recordings
from tests.support.processes import running_process

# The console script of the environment the tests run in.
RECORDINGS = str(Path(sys.executable).parent / "recordings")

# TESTS_THROUGH_PGBOUNCER=1: every PostgreSQL the fixtures start gets a PgBouncer in transaction
# mode in front, and the service's settings point at it (sessions go to PostgreSQL itself).
THROUGH_PGBOUNCER = os.environ.get("TESTS_THROUGH_PGBOUNCER", "") not in ("", "0")
# TESTS_RECORDINGS_PARTITIONED=1: `recordings` is hash-partitioned by account_sid in every
# PostgreSQL the fixtures start (tests.support.partitioning).
PARTITIONED = os.environ.get("TESTS_RECORDINGS_PARTITIONED", "") not in ("", "0")
# The PgBouncer in front of each running PostgreSQL (by its port), in that mode.
_bouncers: dict[int, PgBouncer] = {}


@contextmanager
def running_postgres() -> Iterator[EmbeddedPostgres]:
    """A migrated PostgreSQL in its own directory under /tmp.

    Not under pytest's tmp_path: another pytest run resets that tree to mode 0700, and the
    server (which runs as an unprivileged user when the tests run as root) would lose its data.
    """
    root = Path(tempfile.mkdtemp(prefix="recordings-pg-"))
    server = EmbeddedPostgres(root / "data")
    try:
        server.start()
        asyncio.run(apply_migrations(server.dsn))
        asyncio.run(install_queue(server.dsn))
        if PARTITIONED:
            asyncio.run(partition_recordings(server.dsn))
        if not THROUGH_PGBOUNCER:
            yield server
            return
        with running_pgbouncer(server) as bouncer:
            _bouncers[server.port] = bouncer
            try:
                yield server
            finally:
                del _bouncers[server.port]
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_s3(data_dir: Path) -> Iterator[EmbeddedS3]:
    """A SeaweedFS S3 server keeping its data in ``data_dir``."""
    server = EmbeddedS3(data_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


def make_settings(postgres: EmbeddedPostgres, s3: EmbeddedS3, **overrides: object) -> Settings:
    """The service's settings for these servers, as the tests want them unless overridden."""
    values: dict[str, object] = {
        "s3_bucket": "recordings-tests",
        "ingest_token": INGEST_TOKEN,
        "secret_key": SECRET_KEY,
        "s3_timeout": 10.0,
        "database_timeout": 5.0,
        # Tests that want the worker's eager MP3s turn this on; the rest leave no queue behind.
        "transcode_on_ingest": False,
    }
    bouncer = _bouncers.get(postgres.port)
    if bouncer is not None:
        values.update(database_url=bouncer.dsn, database_direct_url=postgres.dsn)
    values.update(overrides)
    return stack_settings(postgres, s3, **values)


def ensure_bucket(settings: Settings) -> None:
    """Create the settings' bucket if it is missing."""

    async def go() -> None:
        async with open_storage(storage_config(settings)) as storage:
            await storage.ensure_bucket()

    asyncio.run(go())


class UvicornThread:
    """An ASGI app under a real uvicorn on 127.0.0.1, in a thread of the test process."""

    def __init__(self, config: uvicorn.Config) -> None:
        self.port = config.port
        self.base_url = f"http://127.0.0.1:{config.port}"
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                self.__exit__()
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


class ServerThread(UvicornThread):
    """The service under a real uvicorn, in a thread of the test process."""

    def __init__(self, settings: Settings, app: FastAPI | None = None) -> None:
        self.settings = settings
        super().__init__(
            uvicorn.Config(
                app or create_app(settings),
                host="127.0.0.1",
                port=free_port(),
                loop="asyncio",
                **server_options(settings),
                log_level="warning",
                timeout_graceful_shutdown=2,
            )
        )


@contextmanager
def serving(settings: Settings, *, timeout: float = 30.0) -> Iterator[httpx.Client]:
    """The service in-process and a client of it, both closed even when the test fails."""
    with ExitStack() as stack:
        server = stack.enter_context(ServerThread(settings))
        yield stack.enter_context(httpx.Client(base_url=server.base_url, timeout=timeout))


def recordings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a `recordings` process with these settings (and ``extra``), and no
    RECORDINGS_ or AWS_ variable leaking in from the test's own environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECORDINGS_", "AWS_"))}
    env.update(settings_env(settings))
    env.update(extra)
    return env


def run_recordings(
    settings: Settings, *args: str, check: bool = True, **extra: str
) -> subprocess.CompletedProcess[str]:
    """`recordings ARGS` as an operator runs it, configured by these settings (and ``extra``
    variables); with ``check``, it must succeed."""
    result = subprocess.run(
        [RECORDINGS, *args],
        env=recordings_env(settings, **extra),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def answers(base_url: str) -> bool:
    """Whether the service at ``base_url`` says it is alive."""
    with suppress(httpx.TransportError):
        return httpx.get(base_url + "/healthz", timeout=1).status_code == 200
    return False


@contextmanager
def recordings_serve(
    env: Mapping[str, str], log: Path, *, timeout: float = 30.0, args: tuple[str, ...] = ()
) -> Iterator[str]:
    """`recordings serve` on a free loopback port: its base URL once /healthz answers 200.

    The process is stopped and reaped after the block, also when the test fails.
    """
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with running_process(
        [RECORDINGS, "serve", "--port", str(port), *args],
        log=log,
        env=env,
        ready=lambda: answers(base_url),
        timeout=timeout,
    ):
        yield base_url


@contextmanager
def recordings_replicas(
    env: Mapping[str, str], directory: Path, count: int = 2
) -> Iterator[list[str]]:
    """``count`` `recordings serve` processes on one database and storage (replicas behind a
    load balancer): their base URLs, each logging to ``directory/serveN.log``."""
    with ExitStack() as replicas:
        yield [
            replicas.enter_context(recordings_serve(env, directory / f"serve{i}.log"))
            for i in range(count)
        ]


@contextmanager
def new_database(postgres: EmbeddedPostgres, prefix: str = "fresh") -> Iterator[str]:
    """The DSN of an empty database of its own on ``postgres``, dropped afterwards."""
    name = f"{prefix}_{os.urandom(4).hex()}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(postgres.dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE DATABASE {name}"))
    try:
        yield postgres.dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(run(f"DROP DATABASE {name} WITH (FORCE)"))
