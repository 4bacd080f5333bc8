"""A busy client is not a hostile one: a backend job fetching 48 recordings at once from one
address is served whole, and one past its share is told to pace itself (429, code 20429),
not that the service is down (503)."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Iterator

import httpx
import pytest

from service.settings import Settings
from tests.support.clients import new_account, uploaded_sid
from tests.support.stack import ServerThread
from tests.support.wavs import noise_wav

FETCHES = 48


@pytest.fixture(scope="module")
def busy(settings: Settings) -> Iterator[ServerThread]:
    # The defaults, but small chunks: every download takes many sends, so they overlap.
    with ServerThread(settings.model_copy(update={"stream_chunk_bytes": 16 * 1024})) as server:
        yield server


def test_48_concurrent_downloads_from_one_address_are_all_served(
    settings: Settings, busy: ServerThread
) -> None:
    account = new_account(settings.database_url)
    body = noise_wav(8000 * 120)  # two minutes, about 1.9 MB
    with httpx.Client(base_url=busy.base_url, timeout=120) as http:
        sids = [uploaded_sid(http, account, body) for _ in range(4)]
    start = threading.Barrier(FETCHES)
    most = 0
    open_now = 0
    lock = threading.Lock()

    def fetch(n: int) -> tuple[int, bytes]:
        nonlocal most, open_now
        with httpx.Client(base_url=busy.base_url, timeout=120) as http:
            start.wait()
            url = f"{account.base}/{sids[n % len(sids)]}.wav"
            with http.stream("GET", url) as answer:
                with lock:
                    open_now += 1
                    most = max(most, open_now)
                content = answer.read()
                with lock:
                    open_now -= 1
                return answer.status_code, content

    with concurrent.futures.ThreadPoolExecutor(FETCHES) as pool:
        answers = list(pool.map(fetch, range(FETCHES)))
    statuses = [status for status, _ in answers]
    assert statuses == [200] * FETCHES, sorted(set(statuses))
    assert all(content == body for _, content in answers)
    # They did overlap: more at once than the old share of 16 per address.
    assert most > 16, most


def test_a_busy_client_past_its_share_gets_429_with_retry_after(settings: Settings) -> None:
    tight = settings.model_copy(
        update={"max_streams_per_client": 2, "stream_chunk_bytes": 16 * 1024}
    )
    account = new_account(settings.database_url)
    body = noise_wav(8000 * 600)  # ten minutes, 9.6 MB
    stop = threading.Event()
    reading = threading.Semaphore(0)

    def read_slowly(url: str) -> int:
        """Take the audio at a steady pace until told to stop: a client that reads."""
        with httpx.Client(base_url=server.base_url, timeout=60) as mine:
            with mine.stream("GET", url) as answer:
                got = 0
                for chunk in answer.iter_bytes(16 * 1024):
                    got += len(chunk)
                    if got >= 256 * 1024 and got - len(chunk) < 256 * 1024:
                        reading.release()
                    if stop.wait(0.02):
                        break
                return answer.status_code

    with ServerThread(tight) as server, httpx.Client(base_url=server.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, body)
        url = f"{account.base}/{sid}.wav"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            readers = [pool.submit(read_slowly, url) for _ in range(2)]
            try:
                for _ in readers:
                    assert reading.acquire(timeout=60)
                refused = http.get(url)
                assert refused.status_code == 429, refused.text
                assert int(refused.headers["retry-after"]) >= 1
                assert b"<Status>429</Status>" in refused.content
                as_2010 = http.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.wav")
                assert as_2010.status_code == 429
                assert as_2010.json()["code"] == 20429
                other = http.get(url, headers={"X-Forwarded-For": "10.20.30.40"})
                assert other.status_code == 200 and other.content == body
            finally:
                stop.set()
            assert [reader.result() for reader in readers] == [200, 200]
        # Once those are over, the address has its share again.
        again = http.get(url)
        assert again.status_code == 200 and again.content == body
