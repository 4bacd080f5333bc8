"""Fixtures of every tier, thin wrappers of tests.support: the session's PostgreSQL and S3, the
service on a free port, accounts, the demo WAV and the ingest helper bound to the server.

Nothing starts until a test asks for it, and every server started here is stopped after the
session (or the test), also when a test fails. Tests import helpers from tests.support, never
from this file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import service.accounts.auth
from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.clients import Account, Ingest, Tenants, make_tenants, new_account, upload
from tests.support.ffmpeg import CountingFfmpeg
from tests.support.hmacs import CountingHmac
from tests.support.stack import (
    ServerThread,
    ensure_bucket,
    make_settings,
    running_postgres,
    running_s3,
)


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    with running_s3(tmp_path_factory.mktemp("s3") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def settings(postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Settings:
    """The session's settings; their bucket exists."""
    settings = make_settings(postgres, s3)
    ensure_bucket(settings)
    return settings


@pytest.fixture(scope="session")
def server(settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
def client(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


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


@pytest.fixture
def ingest(client: httpx.Client, demo_wav: bytes) -> Ingest:
    """upload() through `client`; the body defaults to the demo WAV, the status to 201."""

    def post(account: Account, body: bytes | None = None, **kwargs: object) -> httpx.Response:
        return upload(client, account, demo_wav if body is None else body, **kwargs)

    return post


@pytest.fixture(scope="module")
def tenants(
    server: ServerThread,
    settings: Settings,
    demo_wav: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> Tenants:
    """Accounts A and B with a recording each; A's audio is its own, so its bytes are A's alone."""
    a_wav = write_demo_wav(tmp_path_factory.mktemp("tenant-a") / "a.wav", 2.0, seed=7)
    return make_tenants(server.base_url, settings.database_url, a_wav.read_bytes(), demo_wav)


@pytest.fixture(scope="module")
def scratch(settings: Settings) -> Account:
    """An account the tests that add rows write to, so the tenants' lists stay exact."""
    return new_account(settings.database_url)


@pytest.fixture
def counting_ffmpeg(settings: Settings, tmp_path: Path) -> CountingFfmpeg:
    return CountingFfmpeg(settings.ffmpeg_path, tmp_path)


@pytest.fixture
def counting_hmac(monkeypatch: pytest.MonkeyPatch) -> CountingHmac:
    """Counts the HMACs and digest comparisons service.accounts.auth makes during the test."""
    counter = CountingHmac()
    monkeypatch.setattr(service.accounts.auth, "hmac", counter)
    return counter
