"""What the tests of `recordings import-twilio` share: recordings made at the source, the command
run against it, and what the destination then holds."""

from __future__ import annotations

import asyncio
import json
import subprocess
from typing import Any

import asyncpg
import httpx

from service.recordings.objects import object_key
from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage
from tests.support.clients import Account, upload
from tests.support.stack import ServerThread, run_recordings
from tests.support.wavs import noise_wav

# Fields section 14 keeps as the source gave them.
KEPT = (
    "sid",
    "call_sid",
    "conference_sid",
    "date_created",
    "date_updated",
    "start_time",
    "duration",
    "channels",
    "source",
    "price",
    "price_unit",
)


def add_recordings(source: ServerThread, account: Account, count: int, **query: str) -> list[str]:
    """``count`` one-second mono recordings at the source, each its own noise."""
    sids = []
    with httpx.Client(base_url=source.base_url, timeout=60) as http:
        for i in range(count):
            body = noise_wav(8000, seed=hash((account.sid, i)) & 0xFFFF)
            created = f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:00Z"
            response = upload(http, account, body, date_created=created, query=query or None)
            sids.append(response.json()["sid"])
    return sids


def import_twilio(
    dest: Settings, api_url: str, account: Account, *args: str
) -> subprocess.CompletedProcess[str]:
    return run_recordings(
        dest,
        "import-twilio",
        "--api-url",
        api_url,
        *args,
        check=False,
        TWILIO_ACCOUNT_SID=account.sid,
        TWILIO_AUTH_TOKEN=account.token,
    )


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout.strip(), result.stderr
    summary: dict[str, Any] = json.loads(result.stdout)
    return summary


def count_rows(dsn: str, account_sid: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM recordings WHERE account_sid = $1", account_sid
                )
            )
        finally:
            await conn.close()

    return asyncio.run(go())


def listed(base_url: str, account: Account) -> list[dict[str, Any]]:
    """Every recording of the account through the 2010 list (PageToken paging)."""
    items: list[dict[str, Any]] = []
    url: str | None = f"/2010-04-01/Accounts/{account.sid}/Recordings.json?PageSize=1000"
    with httpx.Client(base_url=base_url, timeout=30, auth=account.auth) as http:
        while url:
            page = http.get(url)
            assert page.status_code == 200, page.text
            items += page.json()["recordings"]
            url = page.json()["next_page_uri"]
    return items


def wav_of(base_url: str, account_sid: str, sid: str) -> bytes:
    response = httpx.get(f"{base_url}/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.wav")
    assert response.status_code == 200, response.text
    return response.content


def queued_jobs(dsn: str, sids: list[str]) -> list[tuple[str, str]]:
    """(entrypoint, sid) of the jobs queued for these recordings."""

    async def go() -> list[tuple[str, str]]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT entrypoint, payload FROM pgqueuer")
        finally:
            await conn.close()
        # A job's payload is "AccountSid/RecordingSid".
        jobs = [
            (row["entrypoint"], bytes(row["payload"]).decode().rpartition("/")[2]) for row in rows
        ]
        return sorted(job for job in jobs if job[1] in sids)

    return asyncio.run(go())


def leave_behind(dest: Settings, account_sid: str, orphan_sid: str, upload_sid: str) -> None:
    """What a run killed at two stages leaves: an object stored before its row could be
    written, and a multipart upload of a large WAV begun and never completed."""

    async def go() -> None:
        async with open_storage(storage_config(dest)) as storage:
            orphan = object_key(storage, account_sid, orphan_sid, "wav")
            await storage.put_bytes(orphan, b"RIFF, cut short", "audio/x-wav")
            key = object_key(storage, account_sid, upload_sid, "wav")
            started = await storage._client.create_multipart_upload(Bucket=storage.bucket, Key=key)
            await storage._client.upload_part(
                Bucket=storage.bucket,
                Key=key,
                UploadId=started["UploadId"],
                PartNumber=1,
                Body=b"\0" * (5 * 1024 * 1024),
            )

    asyncio.run(go())
