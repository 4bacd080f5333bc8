"""Fixtures of the callback tests: a PostgreSQL of their own per module (their outbox counts
must not see other modules' callbacks), settings with small backoffs and timeouts, a server on
them, and the outbox emptied after each test (a module asks for it with
``pytestmark = pytest.mark.usefixtures("cb_clean")``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.callbacks import FAST, end_pending_callbacks
from tests.support.clients import Account, new_account
from tests.support.stack import ServerThread, ensure_bucket, make_settings, running_postgres


@pytest.fixture(scope="module")
def cb_postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def cb_settings(cb_postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Settings:
    settings = make_settings(cb_postgres, s3, **FAST)
    ensure_bucket(settings)
    return settings


@pytest.fixture(scope="module")
def cb_server(cb_settings: Settings) -> Iterator[ServerThread]:
    with ServerThread(cb_settings) as running:
        yield running


@pytest.fixture
def cb_http(cb_server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cb_server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
def cb_clean(cb_postgres: EmbeddedPostgres) -> Iterator[None]:
    yield
    end_pending_callbacks(cb_postgres.dsn)


@pytest.fixture
def acct(cb_postgres: EmbeddedPostgres) -> Account:
    return new_account(cb_postgres.dsn)
