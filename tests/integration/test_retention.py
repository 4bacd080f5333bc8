"""Retention passes: exactly the recordings past their account's policy are deleted, as DELETE
deletes them (tombstone, objects removed, pending callbacks dropped), once, resumably."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from db.listing import Key
from db.retention import expire_batch
from service.services import open_services
from service.settings import Settings
from tests.support.api2010 import assert_json_error, base2008, base2010, upload
from tests.support.clients import Account, new_account
from tests.support.retention import (
    a_pass,
    add_pending_callback,
    make_recordings,
    run_pass,
    set_policy,
)
from tests.support.rows import fetch_rows, object_exists, stored_key, wait_for_stored_mp3

NOW = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def states(settings: Settings, sids: list[str]) -> dict[str, tuple[bool, bool, int]]:
    """Per recording: tombstoned, objects gone (media_purged_at), pending callbacks."""
    rows = fetch_rows(
        settings.database_url,
        "SELECT r.sid, r.deleted_at IS NOT NULL AS deleted, r.media_purged_at IS NOT NULL AS purged,"
        " (SELECT count(*) FROM callbacks c WHERE c.recording_sid = r.sid"
        "  AND c.status = 'pending') AS pending"
        " FROM recordings r WHERE r.sid = ANY($1::text[])",
        sids,
    )
    return {row["sid"]: (row["deleted"], row["purged"], row["pending"]) for row in rows}


def counts_agree(settings: Settings, account_sid: str) -> bool:
    rows = fetch_rows(
        settings.database_url,
        "SELECT (SELECT count(*) FROM recordings WHERE account_sid = $1 AND deleted_at IS NULL)"
        " AS counted, (SELECT live FROM recording_counts WHERE account_sid = $1) AS kept",
        account_sid,
    )
    return bool(rows[0]["counted"] == rows[0]["kept"])


def test_a_pass_deletes_exactly_what_is_past_each_policy(settings: Settings) -> None:
    own, defaulted = new_account(settings.database_url), new_account(settings.database_url)
    set_policy(settings, own.sid, 30)
    cut_own, cut_default = NOW - timedelta(days=30), NOW - timedelta(days=10)
    # Around each cutoff, to the second: before it goes; at it and after it stays.
    own_sids = make_recordings(
        settings,
        own.sid,
        [cut_own - timedelta(days=400), cut_own - SECOND, cut_own, cut_own + SECOND, NOW],
    )
    default_sids = make_recordings(
        settings,
        defaulted.sid,
        [cut_default - timedelta(days=50), cut_default - SECOND, cut_default + SECOND],
    )
    everyone = [own.sid, defaulted.sid]
    small_batches = settings.model_copy(update={"retention_batch_size": 1})

    # No default: only the account with its own policy loses recordings.
    report = run_pass(small_batches, everyone, now=NOW)
    assert [(a.account_sid, a.days, a.own, a.deleted) for a in report.accounts] == [
        (own.sid, 30, True, 2)
    ]
    assert report.deleted == 2 and report.complete
    seen = states(settings, own_sids + default_sids)
    assert [seen[sid] for sid in own_sids] == [(True, True, 0)] * 2 + [(False, False, 1)] * 3
    assert [seen[sid] for sid in default_sids] == [(False, False, 1)] * 3
    for sid in own_sids:
        assert object_exists(settings, stored_key(settings, own.sid, sid)) == (
            sid not in own_sids[:2]
        )

    # With a default, the account without a policy of its own follows it; the other keeps its own.
    with_default = small_batches.model_copy(update={"retention_days": 10})
    report = run_pass(with_default, everyone, now=NOW)
    by_account = {a.account_sid: (a.days, a.own, a.deleted) for a in report.accounts}
    assert by_account == {own.sid: (30, True, 0), defaulted.sid: (10, False, 2)}
    seen = states(settings, default_sids)
    assert [seen[sid] for sid in default_sids] == [(True, True, 0)] * 2 + [(False, False, 1)]
    assert not object_exists(settings, stored_key(settings, defaulted.sid, default_sids[1]))
    assert object_exists(settings, stored_key(settings, defaulted.sid, default_sids[2]))

    # Again: nothing more to do.
    again = run_pass(with_default, everyone, now=NOW)
    assert again.deleted == 0 and again.leftovers_purged == 0
    assert counts_agree(settings, own.sid) and counts_agree(settings, defaulted.sid)

    # Cleared, the account's own policy gives way to the default.
    set_policy(settings, own.sid, None)
    report = run_pass(with_default, [own.sid], now=NOW)
    assert [(a.days, a.own, a.deleted) for a in report.accounts] == [(10, False, 2)]


def test_no_policy_deletes_nothing(settings: Settings) -> None:
    account = new_account(settings.database_url)
    sids = make_recordings(settings, account.sid, [NOW - timedelta(days=3650)])
    report = run_pass(settings, [account.sid], now=NOW)
    assert report.accounts == [] and report.deleted == 0
    assert states(settings, sids)[sids[0]] == (False, False, 1)


def test_retention_deletes_as_delete_does(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    old = upload(client, settings, account, demo_wav, date_created="2020-01-01T00:00:00Z")
    new = upload(client, settings, account, demo_wav, date_created=datetime.now(UTC).isoformat())
    sid, kept = old.json()["sid"], new.json()["sid"]
    assert client.get(f"{base2010(account)}/Recordings/{sid}.mp3").status_code == 200
    wait_for_stored_mp3(settings, sid)
    keys = [f"{account.sid}/{sid}.wav", f"{account.sid}/{sid}.mp3"]
    assert all(object_exists(settings, key) for key in keys)

    async def callbacks() -> None:
        async with open_services(settings) as services:
            await add_pending_callback(services.pool, account.sid, sid)
            await add_pending_callback(services.pool, account.sid, kept)

    asyncio.run(callbacks())
    set_policy(settings, account.sid, 365)
    assert run_pass(settings, [account.sid]).deleted == 1

    assert client.get(f"{base2008(account)}/{sid}").status_code == 404
    assert client.get(f"{base2008(account)}/{sid}.json", auth=account.auth).status_code == 404
    fetch = f"{base2010(account)}/Recordings/{sid}.json"
    assert_json_error(client.get(fetch, auth=account.auth), 404, 20404)
    shown = client.get(fetch + "?IncludeSoftDeleted=true", auth=account.auth)
    assert shown.status_code == 200 and shown.json()["status"] == "deleted"
    assert not any(object_exists(settings, key) for key in keys)
    assert states(settings, [sid, kept]) == {sid: (True, True, 0), kept: (False, False, 1)}
    listed = client.get(f"{base2010(account)}/Recordings.json", auth=account.auth).json()
    assert [r["sid"] for r in listed["recordings"]] == [kept]
    # A DELETE after it finds nothing to delete, as after a DELETE.
    assert_json_error(client.delete(fetch, auth=account.auth), 404, 20404)


def test_a_delete_drops_the_recordings_pending_callbacks(
    client: httpx.Client, settings: Settings, account: Account
) -> None:
    sid, kept = make_recordings(settings, account.sid, [NOW, NOW])
    response = client.delete(f"{base2010(account)}/Recordings/{sid}.json", auth=account.auth)
    assert response.status_code == 204
    assert states(settings, [sid, kept]) == {sid: (True, True, 0), kept: (False, False, 1)}


def test_two_passes_at_once_delete_each_recording_once(settings: Settings) -> None:
    account = new_account(settings.database_url)
    set_policy(settings, account.sid, 1)
    sids = make_recordings(
        settings, account.sid, [NOW - timedelta(days=2, seconds=i) for i in range(300)]
    )
    small = settings.model_copy(update={"retention_batch_size": 7})

    async def both() -> list[int]:
        reports = await asyncio.gather(
            a_pass(small, [account.sid], now=NOW), a_pass(small, [account.sid], now=NOW)
        )
        return [report.deleted for report in reports]

    deleted = asyncio.run(both())
    assert sum(deleted) == 300, deleted
    assert all(state == (True, True, 0) for state in states(settings, sids).values())
    assert counts_agree(settings, account.sid)


def test_a_pass_cut_short_is_finished_by_the_next(settings: Settings) -> None:
    account = new_account(settings.database_url)
    set_policy(settings, account.sid, 1)
    sids = make_recordings(settings, account.sid, [NOW - timedelta(days=5)] * 4)

    async def crash_after_the_tombstones() -> int:
        # The first transaction of a batch commits; the process dies before the objects go.
        async with open_services(settings) as services:
            batch = await expire_batch(
                services.pool, account.sid, cutoff=NOW - timedelta(days=1), after=None, limit=3
            )
        return len(batch)

    assert asyncio.run(crash_after_the_tombstones()) == 3
    cut_short = states(settings, sids)
    assert sorted(cut_short.values()) == [(False, False, 1)] + [(True, False, 0)] * 3

    report = run_pass(settings, [account.sid], now=NOW)
    assert report.deleted == 1 and report.leftovers_purged >= 3
    assert all(state == (True, True, 0) for state in states(settings, sids).values())
    assert not any(object_exists(settings, stored_key(settings, account.sid, s)) for s in sids)


def test_a_batch_reads_only_the_expired_rows(settings: Settings) -> None:
    account = new_account(settings.database_url)
    # Many live rows the policy keeps, a few expired ones.
    fetch_rows(
        settings.database_url,
        "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
        " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
        " SELECT 'RE' || md5($1 || i), $1, 'CA' || md5('c' || i), 1,"
        " $2::timestamptz - make_interval(secs => i), now(), 8000, 1, 'k' || i, 1, '\"e\"'"
        " FROM generate_series(1, 3000) i",
        account.sid,
        NOW,
    )
    fetch_rows(
        settings.database_url,
        "UPDATE recordings SET date_created = date_created - interval '30 days'"
        " WHERE account_sid = $1 AND date_created < $2::timestamptz - interval '2990 seconds'",
        account.sid,
        NOW,
    )
    fetch_rows(settings.database_url, "ANALYZE recordings")

    async def explain() -> list[asyncpg.Record]:
        # A session of its own (SET below): PostgreSQL itself, past any pooler.
        conn = await asyncpg.connect(settings.session_database_url)
        try:
            # The session's table holds whatever other tests left, a few thousand rows: a plan
            # may read them all more cheaply than by index. Without that option, the question is
            # only whether the index bounds what a batch reads.
            await conn.execute("SET enable_seqscan = off")
            return list(
                await conn.fetch(
                    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT sid FROM recordings"
                    " WHERE account_sid = $1 AND deleted_at IS NULL AND date_created < $2"
                    " ORDER BY date_created, sid LIMIT 500",
                    account.sid,
                    NOW - timedelta(days=1),
                )
            )
        finally:
            await conn.close()

    plan = asyncio.run(explain())
    text = plan[0][0]
    nodes = list(walk(json.loads(text)[0]["Plan"] if isinstance(text, str) else text[0]["Plan"]))
    assert not any(n["Node Type"] == "Seq Scan" for n in nodes), nodes
    # The index range stops at the cutoff: the 3,000 rows it keeps are never read.
    (scan,) = [n for n in nodes if n.get("Index Name")]
    assert root_index(settings.session_database_url, scan["Index Name"]) == (
        "recordings_account_listing"
    )
    assert "date_created" in scan["Index Cond"]
    assert scan["Actual Rows"] == 10
    assert all(n.get("Rows Removed by Filter", 0) == 0 for n in nodes)


def root_index(dsn: str, name: str) -> str:
    """The index a partition's index belongs to (the name itself on a plain table)."""

    async def go() -> str:
        conn = await asyncpg.connect(dsn)
        try:
            parent = await conn.fetchval(
                "SELECT p.relname::text FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhparent"
                " WHERE i.inhrelid = to_regclass($1)",
                name,
            )
        finally:
            await conn.close()
        return str(parent or name)

    return asyncio.run(go())


def walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from walk(child)


def test_the_json_of_a_pass(settings: Settings) -> None:
    account = new_account(settings.database_url)
    set_policy(settings, account.sid, 7)
    make_recordings(settings, account.sid, [NOW - timedelta(days=8)] * 2)
    report = run_pass(settings, [account.sid], now=NOW)
    assert report.as_json()["accounts"] == [
        {
            "account_sid": account.sid,
            "retention_days": 7,
            "policy": "account",
            "cutoff": (NOW - timedelta(days=7)).isoformat(),
            "deleted": 2,
        }
    ]
    assert report.as_json()["deleted"] == 2


def test_a_resumed_batch_starts_past_its_key(settings: Settings) -> None:
    account = new_account(settings.database_url)
    dates = [NOW - timedelta(days=9, seconds=i) for i in range(3)]
    sids = make_recordings(settings, account.sid, dates)

    async def go() -> list[str]:
        async with open_services(settings) as services:
            batch = await expire_batch(
                services.pool,
                account.sid,
                cutoff=NOW,
                after=Key(dates[1], sids[1]),
                limit=10,
            )
        return [r.sid for r in batch]

    # Oldest first, and only those after the key: the newest of the three.
    assert asyncio.run(go()) == [sids[0]]
