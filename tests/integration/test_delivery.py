"""Redirect delivery, media auth and deletion with a retention window."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.recordings.gc import collect_garbage
from service.services import open_services
from service.settings import Settings
from tests.support.clients import Account, set_media_auth, uploaded_sid
from tests.support.rows import object_exists, stored_key
from tests.support.stack import ServerThread, make_settings


@pytest.fixture
def redirecting(postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Iterator[tuple[ServerThread, str]]:
    # Presigned URLs name the storage as clients see it: here "localhost" instead of 127.0.0.1.
    public = s3.endpoint_url.replace("127.0.0.1", "localhost")
    settings = make_settings(
        postgres,
        s3,
        media_delivery="redirect",
        presign_endpoint_url=public,
        presign_expires=60,
    )
    with ServerThread(settings) as server:
        yield server, public


def test_redirect_mode_sends_clients_to_storage(
    redirecting: tuple[ServerThread, str], account: Account, demo_wav: bytes
) -> None:
    server, public = redirecting
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        sid = uploaded_sid(http, account, demo_wav)
        url = f"{account.base}/{sid}.wav"
        answer = http.get(url)
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert location.startswith(public + "/")
        assert "X-Amz-Expires=60" in location and "X-Amz-Signature=" in location
        assert answer.headers["cache-control"] == "private, no-store"
        assert answer.headers["access-control-allow-origin"] == "*"
        followed = http.get(url, follow_redirects=True)
        assert followed.status_code == 200
        assert followed.content == demo_wav
        assert followed.headers["content-type"] == "audio/x-wav"
        ranged = http.get(url, headers={"Range": "bytes=10-29"}, follow_redirects=True)
        assert ranged.status_code == 206
        assert ranged.content == demo_wav[10:30]
        mp3 = http.get(f"{account.base}/{sid}.mp3", follow_redirects=True)
        assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
        assert (
            http.get(f"{account.base}/{sid}.xml").status_code == 200
        )  # metadata is not redirected


def test_enforce_media_auth_applies_to_redirects_too(
    redirecting: tuple[ServerThread, str],
    settings: Settings,
    account: Account,
    other_account: Account,
    demo_wav: bytes,
) -> None:
    server, _ = redirecting
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        sid = uploaded_sid(http, account, demo_wav)
        set_media_auth(settings.database_url, account.sid, True)
        url = f"{account.base}/{sid}.wav"
        denied = http.get(url)
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Basic")
        assert "location" not in denied.headers
        assert http.get(url, auth=other_account.auth).status_code == 403
        assert http.get(url, auth=(account.sid, "nope")).status_code == 401
        assert http.get(f"{account.base}/{sid}.xml").status_code == 401
        assert http.get(url, auth=account.auth).status_code == 307
        set_media_auth(settings.database_url, account.sid, False)
        assert http.get(url).status_code == 307


def test_retention_window_keeps_objects_until_gc(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, account: Account, demo_wav: bytes
) -> None:
    settings = make_settings(postgres, s3, deleted_retention_seconds=3600)
    with (
        ServerThread(settings) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as http,
    ):
        sid = uploaded_sid(http, account, demo_wav)
        assert http.delete(f"{account.base}/{sid}", auth=account.auth).status_code == 204
        assert http.get(f"{account.base}/{sid}").status_code == 404
        assert http.delete(f"{account.base}/{sid}", auth=account.auth).status_code == 404

    key = stored_key(settings, account.sid, sid)

    async def gc(retention: timedelta) -> int:
        async with open_services(settings) as services:
            report = await collect_garbage(
                services.pool, services.storage, grace=timedelta(hours=1), retention=retention
            )
        return report.purged_recordings

    assert object_exists(settings, key), "kept during the retention window"
    assert asyncio.run(gc(timedelta(hours=1))) == 0
    assert object_exists(settings, key)
    assert asyncio.run(gc(timedelta(0))) >= 1
    assert not object_exists(settings, key)
