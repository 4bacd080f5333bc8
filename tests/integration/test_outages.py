"""PostgreSQL or storage down: clean 503s with Retry-After and no internals, then recovery
without a restart."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.clients import new_account, upload, uploaded_sid
from tests.support.faults import FaultProxy
from tests.support.internals import assert_no_internals
from tests.support.stack import (
    ensure_bucket,
    make_settings,
    running_postgres,
    running_s3,
    serving,
)


@pytest.fixture
def own_postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def own_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedS3]:
    with running_s3(tmp_path_factory.mktemp("s3-outage") / "data") as server:
        yield server


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("condition not reached in time")


def test_postgres_down_is_503_then_recovers(
    own_postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, demo_wav: bytes
) -> None:
    settings_ = make_settings(own_postgres, s3, database_timeout=2.0)
    account = new_account(own_postgres.dsn)
    with serving(settings_, timeout=20) as http:
        sid = uploaded_sid(http, account, demo_wav)
        media = f"{account.base}/{sid}"
        assert http.get(account.base, auth=account.auth).status_code == 200

        own_postgres.kill()
        for path, auth in [(account.base, account.auth), (media, None), (media + ".xml", None)]:
            response = http.get(path, auth=auth)
            assert response.status_code == 503, (path, response.status_code, response.text)
            assert response.headers["retry-after"].isdigit()
            assert b"<Status>503</Status>" in response.content
            assert b"asyncpg" not in response.content and b"Traceback" not in response.content
        upload(http, account, demo_wav, expect=503)
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

    ensure_bucket(settings_)
    account = new_account(postgres.dsn)
    with serving(settings_) as http:
        media = f"{account.base}/{uploaded_sid(http, account, demo_wav)}"

        own_s3.kill()
        response = http.get(media)
        assert response.status_code == 503
        assert response.headers["retry-after"].isdigit()
        assert b"botocore" not in response.content
        upload(http, account, demo_wav, expect=503)
        # Metadata does not need storage.
        assert http.get(media + ".xml").status_code == 200
        assert http.get("/readyz").status_code == 503
        listed = http.get(account.base + ".json", auth=account.auth).json()
        assert listed["total"] == 1, "a failed upload must leave no row"

        own_s3.start()
        wait_for(lambda: http.get(media).status_code == 200)
        assert http.get(media).content == demo_wav
        upload(http, account, demo_wav)


def test_outage_503s_show_no_internals(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, demo_wav: bytes
) -> None:
    account = new_account(settings.database_url)
    with (
        FaultProxy.for_url(s3.endpoint_url, record=True) as s3_proxy,
        FaultProxy.for_url(postgres.dsn, record=True) as db_proxy,
    ):
        watched = make_settings(
            postgres,
            s3,
            s3_endpoint_url=s3_proxy.rewrite(s3.endpoint_url),
            database_url=db_proxy.rewrite(postgres.dsn),
            s3_timeout=3.0,
            database_timeout=3.0,
        )
        with serving(watched, timeout=60) as http:
            sid = uploaded_sid(http, account, demo_wav)
            s3_proxy.refuse()
            started = time.monotonic()
            for suffix in ("", ".wav"):
                response = http.get(f"{account.base}/{sid}{suffix}")
                assert response.status_code == 503, response.text
                assert "retry-after" in response.headers
                assert_no_internals(response, settings)
            s3_proxy.pass_through()
            db_proxy.refuse()
            for response in (
                http.get(f"{account.base}.json", auth=account.auth),
                http.get(f"{account.base}", auth=account.auth),
                http.get(f"{account.base}/{sid}.xml"),
                http.delete(f"{account.base}/{sid}", auth=account.auth),
            ):
                assert response.status_code == 503, response.text
                assert "retry-after" in response.headers
                assert_no_internals(response, settings)
            db_proxy.pass_through()
            assert time.monotonic() - started < 55
            # And it recovers by itself.
            deadline = time.monotonic() + 20
            while http.get(f"{account.base}/{sid}.xml").status_code != 200:
                assert time.monotonic() < deadline, "no recovery"
                time.sleep(0.2)
            assert hashlib.sha256(http.get(f"{account.base}/{sid}").content).digest() == (
                hashlib.sha256(demo_wav).digest()
            )
