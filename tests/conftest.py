"""Real servers for the tests: PostgreSQL, SeaweedFS S3 and the service on free ports."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
import uvicorn

from db.migrations import apply_migrations
from devstack.demo import write_demo_wav
from devstack.dev import stack_settings
from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.accounts.registry import create_account
from service.app import create_app
from service.http.server import http_protocol
from service.mp3.queue import install_queue
from service.services import storage_config
from service.settings import Settings
from service.sids import new_sid
from storage.client import open_storage

INGEST_TOKEN = "test-ingest-token-" + secrets.token_hex(8)


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
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(tmp_path_factory.mktemp("s3") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def make_settings(postgres: EmbeddedPostgres, s3: EmbeddedS3, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "s3_bucket": "recordings-tests",
        "ingest_token": INGEST_TOKEN,
        "s3_timeout": 10.0,
        "database_timeout": 5.0,
        # Tests that want the worker's eager MP3s turn this on; the rest leave no queue behind.
        "transcode_on_ingest": False,
    }
    values.update(overrides)
    return stack_settings(postgres, s3, **values)


@pytest.fixture(scope="session")
def settings(postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Settings:
    settings = make_settings(postgres, s3)

    async def bucket() -> None:
        async with open_storage(storage_config(settings)) as storage:
            await storage.ensure_bucket()

    asyncio.run(bucket())
    return settings


class ServerThread:
    """The service under a real uvicorn, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            loop="asyncio",
            http=http_protocol(settings.max_header_bytes),
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the service did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


@dataclass(frozen=True)
class Account:
    sid: str
    token: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.sid, self.token)

    @property
    def base(self) -> str:
        return f"/2008-08-01/Accounts/{self.sid}/Recordings"


def new_account(dsn: str) -> Account:
    async def go() -> Account:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            made = await create_account(pool, "test")
        finally:
            await pool.close()
        return Account(made.account_sid, made.auth_token)

    return asyncio.run(go())


@pytest.fixture
def account(settings: Settings) -> Account:
    return new_account(settings.database_url)


@pytest.fixture
def other_account(settings: Settings) -> Account:
    return new_account(settings.database_url)


@pytest.fixture(scope="session")
def demo_wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("audio") / "demo.wav"
    return write_demo_wav(path, 3.0).read_bytes()


Ingest = Callable[..., httpx.Response]


def post_recording(http: httpx.Client, account: Account, body: bytes) -> httpx.Response:
    """Upload through the ingest endpoint of whatever server ``http`` points at."""
    return http.post(
        f"/internal/Accounts/{account.sid}/Recordings.json",
        params={"CallSid": new_sid("CA")},
        content=body,
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    )


def upload(http: httpx.Client, account: Account, body: bytes) -> str:
    """The SID of a recording uploaded through ``http``, which must succeed."""
    response = post_recording(http, account, body)
    assert response.status_code == 201, response.text
    return str(response.json()["sid"])


@pytest.fixture
def ingest(client: httpx.Client, demo_wav: bytes) -> Ingest:
    def upload(
        account: Account,
        body: bytes | None = None,
        *,
        call_sid: str | None = None,
        date_created: str | None = None,
        suffix: str = ".json",
        expect: int | None = 201,
    ) -> httpx.Response:
        params = {"CallSid": call_sid or new_sid("CA")}
        if date_created:
            params["DateCreated"] = date_created
        response = client.post(
            f"/internal/Accounts/{account.sid}/Recordings{suffix}",
            params=params,
            content=demo_wav if body is None else body,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "audio/x-wav"},
        )
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    return upload


def run(coro_factory: Callable[[], object]) -> object:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


TESTS_DIR = Path(__file__).parent
