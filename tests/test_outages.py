"""PostgreSQL or storage down: clean 503s with Retry-After, then recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from tests.conftest import (
    ServerThread,
    make_settings,
    new_account,
    post_recording,
    running_postgres,
)


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def own_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(tmp_path_factory.mktemp("s3-outage") / "data")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_postgres_down_is_503_then_recovers(
    own_postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: object, demo_wav: bytes
) -> None:
    settings_ = make_settings(own_postgres, s3, database_timeout=2.0)
    account = new_account(own_postgres.dsn)
    with (
        ServerThread(settings_) as server,
        httpx.Client(base_url=server.base_url, timeout=20) as http,
    ):
        made = post_recording(http, account, demo_wav)
        assert made.status_code == 201
        sid = made.json()["sid"]
        media = f"{account.base}/{sid}"
        assert http.get(account.base, auth=account.auth).status_code == 200

        own_postgres.kill()
        for path, auth in [(account.base, account.auth), (media, None), (media + ".xml", None)]:
            response = http.get(path, auth=auth)
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert response.headers["retry-after"].isdigit()
            assert b"<Status>503</Status>" in response.content
            assert b"asyncpg" not in response.content and b"Traceback" not in response.content
        assert post_recording(http, account, demo_wav).status_code == 503
        assert http.get("/readyz").status_code == 503
        assert http.get("/healthz").status_code == 200

        own_postgres.start()
        wait_for(lambda: http.get(account.base, auth=account.auth).status_code == 200)
        assert http.get(media).content == demo_wav
        assert http.get("/readyz").status_code == 200
        listed = http.get(account.base + ".json", auth=account.auth).json()
        assert [r["sid"] for r in listed["recordings"]] == [sid]


def test_storage_down_is_503_then_recovers(
    postgres: EmbeddedPostgres, own_s3: EmbeddedS3, demo_wav: bytes
) -> None:
    settings_ = make_settings(postgres, own_s3, s3_timeout=3.0)

    async def bucket() -> None:
        from service.services import storage_config
        from storage.client import open_storage

        async with open_storage(storage_config(settings_)) as storage:
            await storage.ensure_bucket()

    asyncio.run(bucket())
    account = new_account(postgres.dsn)
    with (
        ServerThread(settings_) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        made = post_recording(http, account, demo_wav)
        assert made.status_code == 201
        media = f"{account.base}/{made.json()['sid']}"

        own_s3.kill()
        response = http.get(media)
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert b"botocore" not in response.content
        assert post_recording(http, account, demo_wav).status_code == 503
        # Metadata does not need storage.
        assert http.get(media + ".xml").status_code == 200
        assert http.get("/readyz").status_code == 503
        listed = http.get(account.base + ".json", auth=account.auth).json()
        assert listed["total"] == 1, "a failed upload must leave no row"

        own_s3.start()
        wait_for(lambda: http.get(media).status_code == 200)
        assert http.get(media).content == demo_wav
        assert post_recording(http, account, demo_wav).status_code == 201
