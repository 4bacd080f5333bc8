"""A fault-injecting TCP proxy between the service and its servers: stalls, resets, refusals and
cut transfers give bounded 503s (or visibly aborted transfers), never a hang, a 500, a short 200
or a lost recording, and the service recovers by itself when the network heals."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest

from db.pool import open_pool
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.recordings.gc import collect_garbage
from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage
from tests.support.clients import Account, new_account, upload
from tests.support.faults import FaultProxy
from tests.support.rows import recording_sids, stored_key
from tests.support.stack import make_settings, serving
from tests.support.wavs import noise_wav

DB_TIMEOUT = 2.0
S3_TIMEOUT = 3.0
# A storage call is up to three attempts (botocore's max_attempts=2 counts retries) of
# S3_TIMEOUT each, with up to 1 + 2 s of backoff between them.
S3_BOUND = 3 * S3_TIMEOUT + 5
DB_BOUND = 3 * DB_TIMEOUT + 1
# The session's `settings` fixture creates the bucket every test here uses.
pytestmark = pytest.mark.usefixtures("settings")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def s3_proxy(s3: EmbeddedS3) -> Iterator[FaultProxy]:
    with FaultProxy.for_url(s3.endpoint_url) as proxy:
        yield proxy


@pytest.fixture
def pg_proxy(postgres: EmbeddedPostgres) -> Iterator[FaultProxy]:
    with FaultProxy.for_url(postgres.dsn) as proxy:
        yield proxy


@pytest.fixture
def own_account(postgres: EmbeddedPostgres) -> Account:
    return new_account(postgres.dsn)


def faulty_settings(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    *,
    pg: FaultProxy | None = None,
    storage: FaultProxy | None = None,
) -> Settings:
    """The session's servers, reached through the given proxies, under a key prefix of its own."""
    return make_settings(
        postgres,
        s3,
        database_url=pg.rewrite(postgres.dsn) if pg else postgres.dsn,
        s3_endpoint_url=storage.rewrite(s3.endpoint_url) if storage else s3.endpoint_url,
        database_timeout=DB_TIMEOUT,
        s3_timeout=S3_TIMEOUT,
        s3_key_prefix=f"faults-{secrets.token_hex(4)}/",
        transcode_on_ingest=False,
    )


def timed(call: Any, *args: Any, **kw: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call(*args, **kw)
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.headers.get("retry-after", "").isdigit(), response.headers
    assert b"<RestException>" in response.content or b'"status": 503' in response.content
    for leak in (b"Traceback", b"botocore", b"aiohttp", b"asyncpg", b"127.0.0.1"):
        assert leak not in response.content, response.text


def wait_until_ok(http: httpx.Client, path: str, *, timeout: float = 15.0, **kw: Any) -> None:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(path, **kw)
        if response.status_code == 200:
            return
        assert response.status_code == 503, (path, response.status_code, response.text)
        assert time.monotonic() < deadline, f"{path} did not recover in {timeout} s"
        time.sleep(0.2)


def read_aborted(
    http: httpx.Client, path: str, during: Callable[[], None] | None = None
) -> tuple[int, int, bool]:
    """GET ``path`` streamed: (Content-Length, bytes received, whether the client saw an abort).

    ``during`` is called once the first bytes have arrived (to inject a fault mid-transfer).
    """
    received, aborted = 0, False
    with http.stream("GET", path) as response:
        assert response.status_code == 200, response.status_code
        length = int(response.headers["content-length"])
        try:
            for chunk in response.iter_raw(64 * 1024):
                received += len(chunk)
                if during is not None and received >= 64 * 1024:
                    during()
                    during = None
        except (httpx.RemoteProtocolError, httpx.ReadError):
            aborted = True
    return length, received, aborted


# -- storage -------------------------------------------------------------------------------------


def test_s3_stall_is_a_bounded_503_then_the_same_bytes(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(3_000_000 // 2, seed=1)  # 3 MB: 2 bytes a frame
    with serving(faulty_settings(postgres, s3, storage=s3_proxy)) as http:
        made = upload(http, own_account, body)
        media = f"{own_account.base}/{made.json()['sid']}"
        assert sha(http.get(media).content) == sha(body)

        s3_proxy.stall()
        response, elapsed = timed(http.get, media)
        assert_unavailable(response)
        assert elapsed < S3_BOUND, f"a stalled storage held the request {elapsed:.1f} s"
        # Metadata does not need storage.
        assert http.get(media + ".json").status_code == 200

        s3_proxy.pass_through()
        again = http.get(media)
        assert again.status_code == 200
        assert sha(again.content) == sha(body)

        # A stall in the middle of the body: the transfer is aborted, in bounded time.
        s3_proxy.latency(0.05)
        started = time.monotonic()
        length, received, aborted = read_aborted(http, media, during=s3_proxy.stall)
        elapsed = time.monotonic() - started
        assert aborted and received < length, (received, length, aborted)
        assert elapsed < S3_BOUND, f"a stalled transfer held the client {elapsed:.1f} s"

        s3_proxy.pass_through()
        assert sha(http.get(media).content) == sha(body)


def test_s3_cut_mid_object_aborts_the_transfer_then_recovers(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(3_000_000 // 2, seed=2)
    with serving(faulty_settings(postgres, s3, storage=s3_proxy)) as http:
        made = upload(http, own_account, body)
        media = f"{own_account.base}/{made.json()['sid']}"

        s3_proxy.cut_after(1_000_000, "to_client")
        length, received, aborted = read_aborted(http, media)
        assert s3_proxy.cuts >= 1, "the proxy never cut the transfer"
        assert length == len(body)
        assert aborted and received < length, (
            f"a cut storage read looked complete to the client: {received} of {length}, "
            f"aborted={aborted}"
        )

        s3_proxy.pass_through()
        again = http.get(media)
        assert again.status_code == 200
        assert sha(again.content) == sha(body)


def test_s3_reset_aborts_a_transfer_gives_503_and_recovers(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(3_000_000 // 2, seed=3)
    with serving(faulty_settings(postgres, s3, storage=s3_proxy)) as http:
        made = upload(http, own_account, body)
        media = f"{own_account.base}/{made.json()['sid']}"

        # Reset mid-transfer: slowed down so the RST surely lands while bytes flow.
        s3_proxy.latency(0.05)
        length, received, aborted = read_aborted(http, media, during=s3_proxy.reset)
        assert s3_proxy.resets >= 1
        assert aborted and received < length, (received, length, aborted)

        # Every pooled storage connection was reset too: the next GET must not fail for it.
        again = http.get(media)
        assert again.status_code == 200, again.text
        assert sha(again.content) == sha(body)

        # Reset, and refuse what follows: a clean 503, then recovery.
        s3_proxy.reset(then="refuse")
        response, elapsed = timed(http.get, media)
        assert_unavailable(response)
        assert elapsed < S3_BOUND

        s3_proxy.pass_through()
        wait_until_ok(http, media)
        assert sha(http.get(media).content) == sha(body)


def test_s3_refused_is_503_and_no_row_then_recovers(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(200_000 // 2, seed=4)
    with serving(faulty_settings(postgres, s3, storage=s3_proxy)) as http:
        made = upload(http, own_account, body)
        media = f"{own_account.base}/{made.json()['sid']}"

        s3_proxy.refuse()
        response, elapsed = timed(http.get, media)
        assert_unavailable(response)
        assert elapsed < S3_BOUND
        failed, elapsed = timed(
            upload, http, own_account, noise_wav(100_000 // 2, seed=5), expect=None
        )
        assert_unavailable(failed)
        assert elapsed < S3_BOUND
        assert s3_proxy.refused >= 1
        assert len(recording_sids(postgres.dsn, own_account.sid)) == 1, "a failed ingest left a row"

        s3_proxy.pass_through()
        wait_until_ok(http, media)
        assert sha(http.get(media).content) == sha(body)
        upload(http, own_account, body)


# -- PostgreSQL ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["refuse", "reset", "stall"])
def test_postgres_fault_is_a_bounded_503_then_recovers(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    pg_proxy: FaultProxy,
    own_account: Account,
    fault: str,
) -> None:
    body = noise_wav(100_000 // 2, seed=6)
    with serving(faulty_settings(postgres, s3, pg=pg_proxy)) as http:
        made = upload(http, own_account, body)
        sid = made.json()["sid"]
        media = f"{own_account.base}/{sid}"
        listing = own_account.base + ".json"
        assert http.get(listing, auth=own_account.auth).status_code == 200

        if fault == "refuse":
            pg_proxy.refuse()
        elif fault == "reset":
            pg_proxy.reset(then="refuse")
        else:
            pg_proxy.stall()
        for path, auth in [(listing, own_account.auth), (media + ".xml", None), (media, None)]:
            response, elapsed = timed(http.get, path, auth=auth)
            assert_unavailable(response)
            assert elapsed < DB_BOUND, f"{path}: {elapsed:.1f} s with PostgreSQL {fault}"
        assert http.get("/healthz").status_code == 200

        pg_proxy.pass_through()
        wait_until_ok(http, listing, auth=own_account.auth)
        listed = http.get(listing, auth=own_account.auth).json()
        assert [r["sid"] for r in listed["recordings"]] == [sid]
        assert sha(http.get(media).content) == sha(body)
        upload(http, own_account, body)


def test_postgres_reset_of_idle_connections_is_invisible(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    pg_proxy: FaultProxy,
    own_account: Account,
) -> None:
    with serving(faulty_settings(postgres, s3, pg=pg_proxy)) as http:
        listing = own_account.base + ".json"
        assert http.get(listing, auth=own_account.auth).status_code == 200
        assert pg_proxy.active >= 1
        pg_proxy.reset()
        response = http.get(listing, auth=own_account.auth)
        assert response.status_code == 200, response.text


# -- ingest --------------------------------------------------------------------------------------


def collect_and_list(settings: Settings, account: Account) -> tuple[list[str], list[str]]:
    """Run the garbage collector (no grace) directly against the servers, then list what the
    account still has in storage: (object keys, keys of unfinished multipart uploads)."""

    async def go() -> tuple[list[str], list[str]]:
        async with (
            open_pool(settings.database_url, max_size=2) as pool,
            open_storage(storage_config(settings)) as storage,
        ):
            # As gc runs once the longest an ingest may take has passed: an interrupted
            # ingest's upload is then no longer one that could still be under way.
            await collect_garbage(pool, storage, grace=timedelta(0), upload_youngest=timedelta(0))
            keys = [obj.key async for obj in storage.list_objects(f"{account.sid}/")]
            uploads = await storage._client.list_multipart_uploads(
                Bucket=storage.bucket, Prefix=storage.key(f"{account.sid}/")
            )
            return sorted(keys), [u["Key"] for u in uploads.get("Uploads", [])]

    return asyncio.run(go())


def direct_settings(settings: Settings, postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Settings:
    """``settings`` (its key prefix) without the proxies."""
    return settings.model_copy(
        update={"database_url": postgres.dsn, "s3_endpoint_url": s3.endpoint_url}
    )


def test_ingest_through_a_cut_upload_leaves_nothing_behind(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(20_000_000 // 2, seed=7)  # several parts of a multipart upload
    settings_ = faulty_settings(postgres, s3, storage=s3_proxy)
    with serving(settings_) as http:
        s3_proxy.cut_after(1_000_000, "to_upstream")
        failed, elapsed = timed(upload, http, own_account, body, expect=None)
        assert s3_proxy.cuts >= 1
        assert_unavailable(failed)
        assert elapsed < 2 * S3_BOUND
        assert len(recording_sids(postgres.dsn, own_account.sid)) == 0, "a failed ingest left a row"

        s3_proxy.pass_through()
        made = upload(http, own_account, body)
        sid = made.json()["sid"]
        assert sha(http.get(f"{own_account.base}/{sid}").content) == sha(body)

    keys, unfinished = collect_and_list(direct_settings(settings_, postgres, s3), own_account)
    assert keys == [stored_key(settings_, own_account.sid, sid)]
    assert unfinished == [], "an aborted ingest left its multipart upload behind"


def test_ingest_refused_mid_multipart_leaves_no_unfinished_upload(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(20_000_000 // 2, seed=9)
    settings_ = faulty_settings(postgres, s3, storage=s3_proxy)
    with serving(settings_) as http, ThreadPoolExecutor(1) as worker:
        pending = worker.submit(upload, http, own_account, body, expect=None)
        deadline = time.monotonic() + 30
        while s3_proxy.bytes_to_upstream < 9_000_000:  # the first 8 MB part has gone through
            assert not pending.done(), pending.result().text
            assert time.monotonic() < deadline, "the upload never reached storage"
            time.sleep(0.005)
        s3_proxy.refuse()
        assert_unavailable(pending.result(timeout=60))
        assert len(recording_sids(postgres.dsn, own_account.sid)) == 0, "a failed ingest left a row"
        s3_proxy.pass_through()

    keys, unfinished = collect_and_list(direct_settings(settings_, postgres, s3), own_account)
    assert keys == []
    assert unfinished == [], "an interrupted ingest's multipart upload outlives `gc`"


def test_ingest_whose_insert_answer_is_lost_keeps_its_audio(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    pg_proxy: FaultProxy,
    own_account: Account,
) -> None:
    body = noise_wav(300_000 // 2, seed=8)

    def slow_body() -> Iterator[bytes]:
        yield body[:4096]
        time.sleep(0.5)  # the service has looked the account up and is reading the body
        # From here PostgreSQL's answers come late: the INSERT's prepare is answered after
        # 0.75 timeouts, then the INSERT runs and commits, and its answer would come after 1.5.
        pg_proxy.latency(0.75 * DB_TIMEOUT, "to_client")
        yield body[4096:]

    with serving(faulty_settings(postgres, s3, pg=pg_proxy)) as http:
        response = upload(http, own_account, slow_body(), expect=None)
        pg_proxy.pass_through()
        assert response.status_code in (201, 503), response.text
        sids = recording_sids(postgres.dsn, own_account.sid)
        assert sids, "the fault did not land between the INSERT's commit and its answer"
        for sid in sids:
            media = http.get(f"{own_account.base}/{sid}")
            assert media.status_code == 200, f"{sid} is listed but its audio is gone: {media.text}"
            assert sha(media.content) == sha(body)


def test_concurrent_ingests_through_a_flapping_storage_lose_nothing(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    s3_proxy: FaultProxy,
    own_account: Account,
) -> None:
    bodies = [noise_wav((500_000 + 100_000 * i) // 2, seed=100 + i) for i in range(20)]
    stop = threading.Event()

    def flap() -> None:
        faults: list[Callable[[], None]] = [
            s3_proxy.pass_through,
            s3_proxy.reset,
            lambda: s3_proxy.latency(0.05),
            lambda: s3_proxy.reset(then="refuse"),
            s3_proxy.pass_through,
            lambda: s3_proxy.latency(0.01),
            s3_proxy.reset,
        ]
        while not stop.is_set():
            for fault in faults:
                fault()
                if stop.wait(0.15):
                    break

    with serving(faulty_settings(postgres, s3, storage=s3_proxy)) as http:
        flapper = threading.Thread(target=flap, daemon=True)
        flapper.start()
        try:
            with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
                results = list(
                    pool.map(lambda body: upload(http, own_account, body, expect=None), bodies)
                )
        finally:
            stop.set()
            flapper.join(10)
        s3_proxy.pass_through()

        statuses = [r.status_code for r in results]
        assert set(statuses) <= {201, 503}, statuses
        assert s3_proxy.resets >= 1, "no connection was reset while ingesting"
        stored = {
            r.json()["sid"]: sha(body)
            for r, body in zip(results, bodies, strict=True)
            if r.status_code == 201
        }
        assert stored, statuses

        listed = http.get(
            own_account.base + ".json", params={"num": 1000}, auth=own_account.auth
        ).json()
        assert {r["sid"] for r in listed["recordings"]} == set(stored), statuses
        assert len(recording_sids(postgres.dsn, own_account.sid)) == len(stored)
        for sid, digest in stored.items():
            media = http.get(f"{own_account.base}/{sid}")
            assert media.status_code == 200
            assert sha(media.content) == digest, f"{sid}: stored bytes differ from the upload"
