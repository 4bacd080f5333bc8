"""The documented backup and restore, done on the embedded stack: pg_dump first, then the bucket's
objects; restored into a new database and a new bucket, the service serves the same recordings,
byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import subprocess
from pathlib import Path

import asyncpg
import httpx

from devstack.servers import EmbeddedPostgres
from service.services import storage_config
from service.settings import Settings
from storage.client import open_storage
from tests.support.clients import Account, uploaded_sid
from tests.support.stack import ServerThread, run_recordings


def copy_objects(source: Settings, target: Settings, prefix: str) -> int:
    """What `aws s3 sync` does, for the objects under ``prefix``: their count."""

    async def go() -> int:
        async with (
            open_storage(storage_config(source)) as src,
            open_storage(storage_config(target)) as dst,
        ):
            await dst.ensure_bucket()
            copied = 0
            async for obj in src.list_objects(prefix):
                stream = await src.open_object(obj.key)
                try:
                    body = b"".join([chunk async for chunk in stream.iter_chunks(1 << 20)])
                finally:
                    await stream.aclose()
                await dst.put_bytes(obj.key, body, "application/octet-stream")
                copied += 1
            return copied

    return asyncio.run(go())


def admin(dsn: str, sql: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(go())


def test_pg_dump_and_a_bucket_copy_restore_every_recording(
    settings: Settings,
    postgres: EmbeddedPostgres,
    client: httpx.Client,
    account: Account,
    demo_wav: bytes,
    tmp_path: Path,
) -> None:
    sids = [uploaded_sid(client, account, demo_wav[: len(demo_wav) - i * 2]) for i in range(3)]
    mp3 = client.get(f"{account.base}/{sids[0]}.mp3")
    assert mp3.status_code == 200
    originals = {sid: client.get(f"{account.base}/{sid}.wav").content for sid in sids}

    # Backup: the database first, then the objects.
    dump = tmp_path / "recordings.dump"
    subprocess.run(
        [str(postgres.bin_dir / "pg_dump"), "-Fc", "-f", str(dump), settings.database_url],
        check=True,
        timeout=120,
    )
    restored_db = "restored_" + secrets.token_hex(4)
    restored = settings.model_copy(
        update={
            "database_url": settings.database_url.rsplit("/", 1)[0] + "/" + restored_db,
            "s3_bucket": "restored-" + secrets.token_hex(4),
        }
    )
    assert copy_objects(settings, restored, f"{account.sid}/") == 4  # 3 WAVs and an MP3

    # Restore into a new database and bucket; migrate finds nothing to do.
    admin(settings.database_url, f"CREATE DATABASE {restored_db}")
    try:
        subprocess.run(
            [str(postgres.bin_dir / "pg_restore"), "--no-owner", "-d",
             restored.database_url, str(dump)],
            check=True,
            timeout=300,
        )  # fmt: skip
        migrated = run_recordings(restored, "migrate")
        assert "migration" not in migrated.stdout
        with (
            ServerThread(restored) as server,
            httpx.Client(base_url=server.base_url, timeout=30) as http,
        ):
            listed = http.get(account.base + ".json", auth=account.auth).json()
            assert sorted(r["sid"] for r in listed["recordings"]) == sorted(sids)
            for sid, wav in originals.items():
                got = http.get(f"{account.base}/{sid}.wav").content
                assert hashlib.sha256(got).digest() == hashlib.sha256(wav).digest()
            again = http.get(f"{account.base}/{sids[0]}.mp3")
            assert again.content == mp3.content
    finally:
        admin(settings.database_url, f"DROP DATABASE {restored_db} WITH (FORCE)")
