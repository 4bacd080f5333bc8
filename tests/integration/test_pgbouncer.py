"""The service through Debian's PgBouncer in transaction pooling mode, in front of the session's
PostgreSQL: requests, ingests, MP3s, the CLI and the migrations all work through it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest

import db.pool as pool_module
from db.pool import open_pool
from devstack.pgbouncer import PgBouncer, running_pgbouncer
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.clients import Account, new_account, upload
from tests.support.credentials import create_key
from tests.support.faults import FaultProxy
from tests.support.partitioning import is_partitioned
from tests.support.pgwire import Message, frontend_messages, parsed, round_trips
from tests.support.stack import (
    PARTITIONED,
    THROUGH_PGBOUNCER,
    make_settings,
    run_recordings,
    serving,
)


@pytest.fixture(scope="module")
def bouncer(postgres: EmbeddedPostgres) -> Iterator[PgBouncer]:
    # Few server connections for many clients: each transaction lands on whichever is free.
    with running_pgbouncer(postgres, pool_size=3) as running:
        yield running


@pytest.fixture(scope="module")
def pooled(
    bouncer: PgBouncer, postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings
) -> Settings:
    return make_settings(
        postgres,
        s3,
        database_url=bouncer.dsn,
        database_direct_url=postgres.dsn,
        database_pool_size=8,
        s3_bucket=settings.s3_bucket,
    )


def test_requests_and_ingests_through_pgbouncer(pooled: Settings, demo_wav: bytes) -> None:
    account = new_account(pooled.session_database_url)
    with serving(pooled) as http:

        def ingest(_: int) -> int:
            return upload(http, account, demo_wav, expect=None).status_code

        def read(i: int) -> int:
            paths = [f"{account.base}/{sids[i % len(sids)]}.json", f"{account.base}.json"]
            return http.get(paths[i % 2], auth=account.auth).status_code

        with ThreadPoolExecutor(8) as threads:
            ingested = list(threads.map(ingest, range(12)))
            assert ingested == [201] * 12
            sids = [
                r["sid"]
                for r in http.get(f"{account.base}.json", auth=account.auth).json()["recordings"]
            ]
            assert len(sids) == 12
            assert list(threads.map(read, range(200))) == [200] * 200


def test_mp3_single_flight_through_pgbouncer(
    pooled: Settings, account: Account, demo_wav: bytes
) -> None:
    with serving(pooled) as http:
        sid = upload(http, account, demo_wav).json()["sid"]
        with ThreadPoolExecutor(4) as threads:
            got = list(threads.map(lambda _: http.get(f"{account.base}/{sid}.mp3"), range(4)))
        assert [r.status_code for r in got] == [200] * 4
        assert len({r.content for r in got}) == 1
        # The flight's lock was released on the connection that took it: a second run is free.
        assert http.get(f"{account.base}/{sid}.mp3").status_code == 200


def test_cli_import_through_pgbouncer(pooled: Settings, tmp_path: Path, demo_wav: bytes) -> None:
    account = new_account(pooled.session_database_url)
    files = []
    for i in range(3):
        files.append(tmp_path / f"{i}.wav")
        files[-1].write_bytes(demo_wav)
    done = run_recordings(pooled, "import", "--account", account.sid, "--json", *map(str, files))
    assert done.stdout.count('"sid"') == 3
    listed = run_recordings(pooled, "accounts", "list", "--json")
    assert account.sid in listed.stdout


def test_migrate_through_pgbouncer_takes_its_lock_directly(pooled: Settings) -> None:
    # Already migrated: nothing to do, and the lock taken and released on one session.
    first = run_recordings(pooled, "migrate")
    second = run_recordings(pooled, "migrate")
    assert first.returncode == second.returncode == 0


def test_direct_url_defaults_to_the_database_url(settings: Settings) -> None:
    assert settings.model_copy(update={"database_direct_url": None}).session_database_url == (
        settings.database_url
    )


def test_pgbouncer_multiplexes_transactions(bouncer: PgBouncer) -> None:
    # What breaks session state: one client's consecutive statements meet different backends.
    async def backends() -> tuple[int, int]:
        one = await asyncpg.connect(bouncer.dsn, statement_cache_size=0)
        two = await asyncpg.connect(bouncer.dsn, statement_cache_size=0)
        try:
            first = await one.fetchval("SELECT pg_backend_pid()")
            async with two.transaction():
                # ``two`` now holds the backend ``one`` had; ``one`` gets another.
                assert await two.fetchval("SELECT pg_backend_pid()") == first
                return first, await one.fetchval("SELECT pg_backend_pid()")
        finally:
            await one.close()
            await two.close()

    first, then = asyncio.run(backends())
    assert first != then


def test_the_session_settings_go_through_pgbouncer_when_asked(settings: Settings) -> None:
    # TESTS_THROUGH_PGBOUNCER=1 (the battery run of .ci/run) really puts the pooler in between.
    assert settings.database_pooled == THROUGH_PGBOUNCER


def test_recordings_are_partitioned_when_asked(settings: Settings) -> None:
    # TESTS_RECORDINGS_PARTITIONED=1 (a battery run of .ci/run) really partitions the table.
    assert asyncio.run(is_partitioned(settings.session_database_url)) == PARTITIONED


def test_a_statement_through_the_pooler_is_described_once(
    bouncer: PgBouncer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def run(proxy: FaultProxy, times: int) -> list[Message]:
        async with open_pool(proxy.rewrite(bouncer.dsn), max_size=1, pooled=True) as pool:
            assert await pool.fetchval("SELECT 1") == 1
            mark = len(proxy.sent_since(0))
            for n in range(times):
                assert await pool.fetchval("SELECT $1::int + 1", n) == n + 1
            return frontend_messages(proxy.sent_since(mark))

    with FaultProxy.for_url(bouncer.dsn, record=True) as proxy:
        messages = asyncio.run(run(proxy, 10))
    # The first run asks for the types (Parse, Describe, Flush); each run is then Parse, Bind,
    # Execute and Sync in one write: eleven round trips for ten runs, not twenty.
    assert [m.kind for m in messages[:3]] == ["P", "D", "H"]
    assert sum(m.kind == "D" for m in messages) == 1
    assert round_trips(messages) == 11
    assert len(parsed(messages, "SELECT $1::int + 1")) == 11

    # A description is kept only so long: past its lifetime the statement is described again.
    monkeypatch.setattr(pool_module, "DESCRIPTION_LIFETIME", 0.0)
    with FaultProxy.for_url(bouncer.dsn, record=True) as proxy:
        messages = asyncio.run(run(proxy, 3))
    assert sum(m.kind == "D" for m in messages) == 3
    assert round_trips(messages) == 6


def test_an_instance_get_with_the_accounts_own_token_is_one_round_trip(
    bouncer: PgBouncer, pooled: Settings, demo_wav: bytes
) -> None:
    account = new_account(pooled.session_database_url)
    with FaultProxy.for_url(bouncer.dsn, record=True) as proxy:
        # One connection in the pool, so what it sent is one ordered stream of messages.
        settings = pooled.model_copy(
            update={"database_url": proxy.rewrite(bouncer.dsn), "database_pool_size": 1}
        )
        with serving(settings) as http:
            sid = upload(http, account, demo_wav).json()["sid"]
            key = create_key(http, account.auth, account.sid)
            path = f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.json"

            def sent_for(auth: tuple[str, str]) -> list[Message]:
                assert http.get(path, auth=auth).status_code == 200  # described
                mark = len(proxy.sent_since(0))
                assert http.get(path, auth=auth).json()["sid"] == sid
                return frontend_messages(proxy.sent_since(mark))

            own = sent_for(account.auth)
            by_key = sent_for(key)
    # The account's row comes with the recording's: one statement, one round trip.
    assert round_trips(own) == 1
    assert len(parsed(own, "FROM recordings r JOIN accounts a")) == 1
    # A key takes the full check alone: its owner, then the recording (the counting works).
    assert round_trips(by_key) == 2
