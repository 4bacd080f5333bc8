"""The `recordings` command line, run as operators run it: a subprocess configured by environment."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from db.migrations import load_migrations
from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage
from tests.support.clients import Account, Ingest
from tests.support.rows import object_exists, stored_key
from tests.support.stack import RECORDINGS, new_database, recordings_env, run_recordings


@pytest.fixture
def fresh_database(postgres: EmbeddedPostgres) -> Iterator[str]:
    with new_database(postgres, "fresh") as dsn:
        yield dsn


def test_concurrent_migrations_apply_once(
    settings: Settings, s3: EmbeddedS3, fresh_database: str
) -> None:
    target = settings.model_copy(
        update={
            "database_url": fresh_database,
            "database_direct_url": None,
            "s3_bucket": "fresh-bucket",
        }
    )
    env = recordings_env(target)
    runs = [
        subprocess.Popen(
            [RECORDINGS, "migrate"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=120) for p in runs]
    assert all(p.returncode == 0 for p in runs), outputs
    applied = [out for out, _ in outputs if "applied migration 0001" in out]
    assert len(applied) == 1, outputs

    async def versions() -> list[int]:
        conn = await asyncpg.connect(fresh_database)
        try:
            return [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        finally:
            await conn.close()

    assert asyncio.run(versions()) == [m.version for m in load_migrations()]
    assert run_recordings(target, "migrate").stdout.strip() == "up to date"


def test_accounts_create_and_use(client: httpx.Client, settings: Settings) -> None:
    made = json.loads(
        run_recordings(settings, "accounts", "create", "--name", "Ops", "--json").stdout
    )
    assert set(made) == {"account_sid", "auth_token"}
    base = f"/2008-08-01/Accounts/{made['account_sid']}/Recordings"
    assert client.get(base, auth=(made["account_sid"], made["auth_token"])).status_code == 200

    async def stored() -> bytes:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return bytes(
                await conn.fetchval(
                    "SELECT token_hash FROM accounts WHERE sid = $1", made["account_sid"]
                )
            )
        finally:
            await conn.close()

    assert made["auth_token"].encode() not in asyncio.run(stored())
    plain = run_recordings(settings, "accounts", "create").stdout
    assert "AccountSid: AC" in plain and "AuthToken:" in plain


def test_accounts_set_enforce_media_auth(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest
) -> None:
    sid = ingest(account).json()["sid"]
    url = f"{account.base}/{sid}"
    run_recordings(settings, "accounts", "set", "--enforce-media-auth", account.sid)
    denied = client.get(url)
    assert denied.status_code == 401
    assert "www-authenticate" in denied.headers
    allowed = client.get(url, auth=account.auth)
    assert allowed.status_code == 200
    assert allowed.headers["cache-control"].startswith("private")
    run_recordings(settings, "accounts", "set", "--no-enforce-media-auth", account.sid)
    assert client.get(url).status_code == 200
    missing = run_recordings(
        settings, "accounts", "set", "--enforce-media-auth", "AC" + "0" * 32, check=False
    )
    assert missing.returncode != 0


def test_import(client: httpx.Client, settings: Settings, account: Account, tmp_path: Path) -> None:
    files = [write_demo_wav(tmp_path / f"{i}.wav", 2.0 + i, seed=i) for i in range(3)]
    call = "CA" + "ab" * 16
    result = run_recordings(
        settings,
        "import",
        "--account",
        account.sid,
        "--call-sid",
        call,
        "--date-created",
        "2011-05-04T03:02:01Z",
        "--json",
        *map(str, files),
    )
    imported = json.loads(result.stdout)
    assert [item["file"] for item in imported] == [str(f) for f in files]
    for item, source in zip(imported, files, strict=True):
        assert client.get(f"{account.base}/{item['sid']}").content == source.read_bytes()
        meta = client.get(f"{account.base}/{item['sid']}.json").json()
        assert meta["call_sid"] == call
        assert meta["date_created"] == "Wed, 04 May 2011 03:02:01 +0000"
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nonsense" * 50)
    failed = run_recordings(settings, "import", "--account", account.sid, str(bad), check=False)
    assert failed.returncode != 0
    assert "could not be decoded" in failed.stderr


def test_import_says_how_and_when_a_conference_recording_was_made(
    client: httpx.Client, settings: Settings, account: Account, tmp_path: Path
) -> None:
    wav = write_demo_wav(tmp_path / "conference.wav", 2.0)
    conference = "CF" + "cd" * 16
    result = run_recordings(
        settings,
        "import",
        "--account",
        account.sid,
        "--source",
        "StartConferenceRecordingAPI",
        "--start-time",
        "2011-05-04T03:01:00Z",
        "--conference-sid",
        conference,
        "--json",
        str(wav),
    )
    (item,) = json.loads(result.stdout)
    meta = client.get(
        f"/2010-04-01/Accounts/{account.sid}/Recordings/{item['sid']}.json", auth=account.auth
    ).json()
    assert meta["source"] == "StartConferenceRecordingAPI"
    assert meta["start_time"] == "Wed, 04 May 2011 03:01:00 +0000"
    assert meta["conference_sid"] == conference
    # The platform's ingest refuses what these refuse, and so does the command, before any file.
    for option, value in (
        ("--source", "Voicemail"),
        ("--conference-sid", "CA" + "cd" * 16),
        ("--start-time", "yesterday"),
    ):
        refused = run_recordings(
            settings, "import", "--account", account.sid, option, value, str(wav), check=False
        )
        assert refused.returncode == 2, (option, refused.stderr)
        assert option in refused.stderr


def test_gc_removes_orphans_and_purges_tombstones(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest
) -> None:
    live = ingest(account).json()["sid"]
    doomed = ingest(account).json()["sid"]
    orphan_key = stored_key(settings, account.sid, "RE" + "e" * 32)
    foreign_key = f"{account.sid}/notes.txt"

    async def setup() -> None:
        async with open_storage(storage_config(settings)) as storage:
            await storage.put_bytes(orphan_key, b"orphan", "audio/x-wav")
            await storage.put_bytes(foreign_key, b"not ours", "text/plain")
        conn = await asyncpg.connect(settings.database_url)
        try:
            # A delete whose object removal was interrupted by a crash: a tombstone and its object.
            await conn.execute(
                "UPDATE recordings SET deleted_at = $2 WHERE sid = $1",
                doomed,
                datetime.now(UTC) - timedelta(minutes=1),
            )
        finally:
            await conn.close()

    asyncio.run(setup())
    assert client.get(f"{account.base}/{doomed}").status_code == 404
    result = run_recordings(settings, "gc", "--grace", "0")
    assert "purged" in result.stdout

    async def check() -> tuple[list[bool], int]:
        async with open_storage(storage_config(settings)) as storage:
            exists = [
                await storage.object_exists(stored_key(settings, account.sid, live)),
                await storage.object_exists(stored_key(settings, account.sid, doomed)),
                await storage.object_exists(orphan_key),
                await storage.object_exists(foreign_key),
            ]
        conn = await asyncpg.connect(settings.database_url)
        try:
            # Soft delete: the row stays for the window, marked as having no objects left.
            rows = await conn.fetchval(
                "SELECT count(*) FROM recordings WHERE sid = $1 AND media_purged_at IS NOT NULL",
                doomed,
            )
        finally:
            await conn.close()
        return exists, rows

    exists, rows = asyncio.run(check())
    assert exists == [True, False, False, True]
    assert rows == 1
    assert client.get(f"{account.base}/{live}").status_code == 200


def test_gc_spares_young_objects(settings: Settings, account: Account) -> None:
    key = stored_key(settings, account.sid, "RE" + "d" * 32)

    async def put() -> None:
        async with open_storage(storage_config(settings)) as storage:
            await storage.put_bytes(key, b"upload in flight", "audio/x-wav")

    asyncio.run(put())
    run_recordings(settings, "gc", "--grace", "3600")

    assert object_exists(settings, key)
