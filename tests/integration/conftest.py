"""Fixtures of the callback tests: a PostgreSQL of their own per module (their outbox counts
must not see other modules' callbacks) and settings with small backoffs and timeouts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.callbacks import FAST
from tests.support.stack import ensure_bucket, make_settings, running_postgres


@pytest.fixture(scope="module")
def cb_postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def cb_settings(cb_postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Settings:
    settings = make_settings(cb_postgres, s3, **FAST)
    ensure_bucket(settings)
    return settings
