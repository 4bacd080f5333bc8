"""`recordings gc --grace 0` beside ingests whose multipart uploads are under way: it never
aborts an upload younger than the longest an ingest may take, and an upload storage lost
anyway (botocore's NoSuchUpload) is a clean 503, never a 500.

Storage is reached through a proxy that slows what the service sends, so an ingest's
multipart upload stays open long enough to be seen (and, in the second test, aborted)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.recordings.gc import collect_garbage
from service.services import open_services
from service.settings import Settings
from tests.support.clients import Account, upload
from tests.support.faults import FaultProxy
from tests.support.stack import ServerThread, ensure_bucket, make_settings
from tests.support.wavs import noise_wav


@pytest.fixture(scope="module")
def big_wav() -> bytes:
    return noise_wav(8000 * 1500, seed=5)  # 24 MB: three parts of 8 MiB


@pytest.fixture
def slowed(postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Iterator[tuple[ServerThread, Settings]]:
    direct = make_settings(postgres, s3)
    ensure_bucket(direct)
    with FaultProxy.for_url(s3.endpoint_url) as proxy:
        proxy.latency(0.01, "to_upstream")
        served = direct.model_copy(update={"s3_endpoint_url": proxy.rewrite(s3.endpoint_url)})
        with ServerThread(served) as server:
            yield server, direct


def _unfinished(settings: Settings) -> list[tuple[str, str]]:
    async def go() -> list[tuple[str, str]]:
        async with open_services(settings) as services:
            return [(k, u) async for k, u, _ in services.storage.list_unfinished_uploads()]

    return asyncio.run(go())


def _ingest_in_background(
    server: ServerThread, account: Account, wav: bytes
) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []

    def run() -> None:
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            answers.append(upload(http, account, wav, expect=None))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, answers


def _wait_for_upload(settings: Settings, before: set[tuple[str, str]]) -> tuple[str, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fresh = [u for u in _unfinished(settings) if u not in before]
        if fresh:
            return fresh[0]
        time.sleep(0.02)
    raise AssertionError("no multipart upload was seen")


def test_gc_with_grace_zero_leaves_live_uploads_alone(
    slowed: tuple[ServerThread, Settings], account: Account, big_wav: bytes
) -> None:
    server, direct = slowed
    before = set(_unfinished(direct))
    thread, answers = _ingest_in_background(server, account, big_wav)
    live = _wait_for_upload(direct, before)

    async def gc() -> int:
        async with open_services(direct) as services:
            report = await collect_garbage(services.pool, services.storage, grace=timedelta(0))
            return report.uploads_aborted

    assert asyncio.run(gc()) == 0
    thread.join(120)
    assert answers and answers[0].status_code == 201, answers[0].text if answers else None
    assert live not in _unfinished(direct)


def test_an_upload_storage_lost_is_a_503(
    slowed: tuple[ServerThread, Settings], account: Account, big_wav: bytes
) -> None:
    server, direct = slowed
    before = set(_unfinished(direct))
    thread, answers = _ingest_in_background(server, account, big_wav)
    key, upload_id = _wait_for_upload(direct, before)

    async def abort() -> None:
        async with open_services(direct) as services:
            await services.storage.abort_upload(key, upload_id)

    asyncio.run(abort())
    thread.join(120)
    assert answers, "the ingest did not answer"
    answer = answers[0]
    assert answer.status_code == 503, answer.text
    assert answer.headers.get("retry-after")
    assert answer.json()["status"] == 503
