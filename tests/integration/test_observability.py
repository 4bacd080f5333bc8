"""/metrics after traffic, and request ids on every answer."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from tests.support.clients import Account, Ingest, uploaded_sid
from tests.support.rows import fetch_rows, wait_for_stored_mp3
from tests.support.stack import make_settings, serving


def samples(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_traffic(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, account: Account, demo_wav: bytes
) -> None:
    with serving(make_settings(postgres, s3), timeout=60) as http:
        before = samples(http)
        sid = uploaded_sid(http, account, demo_wav)
        assert http.get(f"{account.base}/{sid}").content == demo_wav
        assert http.get(f"{account.base}/{sid}.mp3").status_code == 200
        # A hit is an MP3 found stored, which the first answer does not wait for.
        wait_for_stored_mp3(make_settings(postgres, s3), sid)
        assert http.get(f"{account.base}/{sid}.mp3").status_code == 200
        assert http.get(account.base, auth=account.auth).status_code == 200
        assert http.get(account.base).status_code == 401
        after = samples(http)

    route = "/2008-08-01/Accounts/{account_sid}/Recordings/{name}"
    listing = "/2008-08-01/Accounts/{account_sid}/Recordings"
    assert (
        value(after, "recordings_http_requests_total", method="GET", route=route, status="200")
        - value(before, "recordings_http_requests_total", method="GET", route=route, status="200")
        == 3
    )
    assert (
        value(after, "recordings_http_requests_total", method="GET", route=listing, status="401")
        >= 1
    )
    assert (
        value(after, "recordings_http_request_duration_seconds_count", method="GET", route=route)
        >= 3
    )
    assert value(after, "recordings_media_bytes_streamed_total", format="wav") - value(
        before, "recordings_media_bytes_streamed_total", format="wav"
    ) == len(demo_wav)
    assert value(after, "recordings_media_bytes_streamed_total", format="mp3") > 0
    assert value(after, "recordings_mp3_cache_requests_total", result="miss") == 1
    assert value(after, "recordings_mp3_cache_requests_total", result="hit") == 1
    assert value(after, "recordings_transcodes_total", outcome="ok") == 1
    assert value(after, "recordings_transcode_duration_seconds_count") == 1
    assert ("recordings_mp3_queue_depth", ()) in after


def test_request_ids(client: httpx.Client, account: Account, ingest: Ingest) -> None:
    fresh = client.get("/healthz").headers["x-request-id"]
    assert len(fresh) >= 16
    assert (
        client.get("/healthz", headers={"X-Request-Id": "trace-42.a_b"}).headers["x-request-id"]
        == "trace-42.a_b"
    )
    unsafe = client.get("/healthz", headers={"X-Request-Id": 'a b"<c>'}).headers["x-request-id"]
    assert unsafe != 'a b"<c>' and all(ch.isalnum() for ch in unsafe)
    assert client.get(account.base).headers["x-request-id"]  # errors carry it too


def test_peaks_runs_and_each_kind_of_job_have_their_own_metrics(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, account: Account, demo_wav: bytes
) -> None:
    import asyncio

    import asyncpg

    from service.mp3.queue import enqueue_mp3
    from service.peaks.jobs import enqueue_peaks
    from service.sids import new_sid

    settings = make_settings(postgres, s3)
    mp3_sid, peaks_sids = new_sid("RE"), [new_sid("RE"), new_sid("RE")]
    with serving(settings, timeout=60) as http:
        before = samples(http)
        sid = uploaded_sid(http, account, demo_wav)
        assert http.get(f"{account.base}/{sid}/Peaks.json").status_code == 200

        async def enqueue() -> None:
            pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
            try:
                await enqueue_mp3(pool, account.sid, mp3_sid)
                for queued in peaks_sids:
                    await enqueue_peaks(pool, account.sid, queued)
            finally:
                await pool.close()

        asyncio.run(enqueue())
        try:
            after = samples(http)
        finally:
            fetch_rows(
                settings.database_url,
                "DELETE FROM pgqueuer WHERE payload = ANY($1::bytea[])",
                [s.encode() for s in (mp3_sid, *peaks_sids)],
            )

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("recordings_peaks_runs_total", outcome="ok") == 1
    assert moved("recordings_peaks_duration_seconds_count") == 1
    assert moved("recordings_transcodes_total", outcome="ok") == 0
    assert moved("recordings_mp3_queue_depth") == 1
    assert moved("recordings_peaks_queue_depth") == 2
