"""The embedded stack the benchmarks run on: PostgreSQL, SeaweedFS S3 and server subprocesses.

Everything is started here and stopped here, by the handle (PID) of the process we started,
on every exit path (normal end, exception, Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from db.migrations import apply_migrations
from devstack.dev import stack_settings
from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.accounts.registry import create_account
from service.mp3.queue import install_queue
from service.services import storage_config
from service.settings import Settings, settings_env
from storage.client import open_storage

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
BUCKET = "recordings-bench"

# PostgreSQL settings for a benchmark box with 24 GiB of memory: a buffer cache that holds the
# hot part of the listing indexes, and a bulk load that skips WAL (wal_level=minimal lets an
# INSERT into a table truncated in the same transaction, and CREATE INDEX, skip WAL).
PUBLIC_URL = "https://recordings.example.com"
PG_SETTINGS: dict[str, str] = {
    "shared_buffers": "2GB",
    "effective_cache_size": "16GB",
    "maintenance_work_mem": "1GB",
    "work_mem": "16MB",
    "max_wal_size": "8GB",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "random_page_cost": "1.1",
    "jit": "off",
}


@dataclass
class Stack:
    postgres: EmbeddedPostgres
    s3: EmbeddedS3
    root: Path
    ingest_token: str
    account_sid: str  # the media benchmarks' account (a few real ingested recordings)
    auth_token: str
    list_account_sid: str  # the listing benchmarks' account (rows generated in SQL)
    list_auth_token: str
    ffmpeg: str

    @property
    def dsn(self) -> str:
        return self.postgres.dsn

    def settings(self, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "s3_bucket": BUCKET,
            "ingest_token": self.ingest_token,
            "ffmpeg": self.ffmpeg,
            "transcode_on_ingest": False,
            "tmp_dir": str(self.root / "tmp"),
            # The load generators stand for many clients from one loopback address.
            "max_streams_per_client": 4096,
            # Fixed, so that the 2010 JSON's media_url is the same bytes from the baseline.
            "public_url": PUBLIC_URL,
        }
        values.update(overrides)
        return stack_settings(self.postgres, self.s3, **values)

    def service_env(self, **overrides: str) -> dict[str, str]:
        """The ``RECORDINGS_*`` environment of ``recordings serve`` on this stack."""
        s = self.settings()
        env = settings_env(s)
        env.update(
            RECORDINGS_FFMPEG=self.ffmpeg,
            # Cold .mp3 is measured with no job queued: nothing is made behind our back.
            RECORDINGS_TRANSCODE_ON_INGEST="false",
            RECORDINGS_TMP_DIR=s.tmp_dir or "",
        )
        env.update(overrides)
        return env


def _tune_postgres(server: EmbeddedPostgres) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(server.dsn)
        try:
            for name, value in PG_SETTINGS.items():
                await conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
        finally:
            await conn.close()

    asyncio.run(go())
    server.stop()
    server.start()


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """PostgreSQL (tuned, migrated) and S3 (bucket made) in a fresh directory under /tmp."""
    root = Path(tempfile.mkdtemp(prefix="recordings-bench-"))
    (root / "tmp").mkdir()
    postgres = EmbeddedPostgres(root / "pg" / "data")
    s3 = EmbeddedS3(root / "s3")
    try:
        postgres.start()
        _tune_postgres(postgres)
        s3.start()
        settings = Settings(
            database_url=postgres.dsn,
            s3_endpoint_url=s3.endpoint_url,
            s3_bucket=BUCKET,
            s3_access_key_id=s3.access_key,
            s3_secret_access_key=s3.secret_key,
        )

        async def prepare() -> tuple[str, str, str, str]:
            await apply_migrations(postgres.dsn)
            await install_queue(postgres.dsn)
            async with open_storage(storage_config(settings)) as storage:
                await storage.ensure_bucket()
            pool = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1)
            try:
                media = await create_account(pool, "bench media")
                listing = await create_account(pool, "bench listing")
            finally:
                await pool.close()
            return media.account_sid, media.auth_token, listing.account_sid, listing.auth_token

        account_sid, auth_token, list_sid, list_token = asyncio.run(prepare())
        yield Stack(
            postgres=postgres,
            s3=s3,
            root=root,
            ingest_token=secrets.token_hex(16),
            account_sid=account_sid,
            auth_token=auth_token,
            list_account_sid=list_sid,
            list_auth_token=list_token,
            ffmpeg=Settings().ffmpeg_path,
        )
    finally:
        s3.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


class ServerProcess:
    """An HTTP server in a subprocess of its own (own session), stopped by its PID."""

    def __init__(
        self, name: str, argv: list[str], *, port: int, env: Mapping[str, str], cwd: Path
    ) -> None:
        self.name = name
        self.argv = argv
        self.port = port
        self.env = {**os.environ, **env}
        self.cwd = cwd
        self.log_path = cwd / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, health_path: str = "/healthz", timeout: float = 30.0) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url + health_path, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not answer {health_path}; see {self.log_path}")
            time.sleep(0.1)

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        self.proc = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_process(stack: Stack, workdir: Path) -> ServerProcess:
    """``recordings serve`` (uvicorn, uvloop, httptools), the production entry point."""
    port = free_port()
    argv = [str(VENV_BIN / "recordings"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return ServerProcess("service", argv, port=port, env=stack.service_env(), cwd=workdir)


def baseline_process(stack: Stack, workdir: Path) -> ServerProcess:
    """The raw ASGI baselines (``bench.apps``) under the same uvicorn settings as the service."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.apps:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {
        "BENCH_DSN": stack.dsn,
        "BENCH_POOL_SIZE": str(Settings().database_pool_size),
        "BENCH_PUBLIC_URL": PUBLIC_URL,
        "PYTHONPATH": str(ROOT),
    }
    return ServerProcess("baseline", argv, port=port, env=env, cwd=workdir)
