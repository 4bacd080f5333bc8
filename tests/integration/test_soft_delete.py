"""Soft delete: a DELETE on either face keeps the metadata for the window (IncludeSoftDeleted),
removes the media at once, and `recordings gc` forgets the row after the window."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from service.recordings.gc import collect_garbage
from service.services import open_services
from service.settings import Settings
from tests.support.api2010 import assert_json_error, base2008, base2010, upload
from tests.support.clients import Account
from tests.support.rows import fetch_rows, object_exists, wait_for_stored_mp3
from tests.support.stack import run_recordings


def gc(
    settings: Settings,
    *,
    retention: timedelta = timedelta(0),
    window: timedelta = timedelta(days=40),
) -> tuple[int, int]:
    async def go() -> tuple[int, int]:
        async with open_services(settings) as services:
            report = await collect_garbage(
                services.pool,
                services.storage,
                grace=timedelta(hours=1),
                retention=retention,
                soft_delete_retention=window,
            )
        return report.purged_recordings, report.forgotten_recordings

    return asyncio.run(go())


def live_counts_agree(settings: Settings, account: Account) -> bool:
    rows = fetch_rows(
        settings.database_url,
        "SELECT (SELECT count(*) FROM recordings WHERE account_sid = $1 AND deleted_at IS NULL) AS counted,"
        " (SELECT live FROM recording_counts WHERE account_sid = $1) AS kept",
        account.sid,
    )
    return bool(rows[0]["counted"] == rows[0]["kept"])


def backdate(settings: Settings, sid: str, days: int) -> None:
    fetch_rows(
        settings.database_url,
        "UPDATE recordings SET deleted_at = now() - make_interval(days => $2) WHERE sid = $1",
        sid,
        days,
    )


@pytest.mark.parametrize(
    "how", ["2010 .json", "2010 bare", "2010 call", "2008", "2008 method override"]
)
def test_a_delete_keeps_metadata_and_drops_media(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes, how: str
) -> None:
    call = "CA" + "7" * 32
    kept = upload(
        client, settings, account, demo_wav, call_sid=call, date_created="2024-02-01T00:00:00Z"
    ).json()["sid"]
    sid = upload(
        client, settings, account, demo_wav, call_sid=call, date_created="2024-02-02T00:00:00Z"
    ).json()["sid"]
    assert client.get(f"{base2010(account)}/Recordings/{sid}.mp3").status_code == 200
    wait_for_stored_mp3(settings, sid)
    keys = [f"{account.sid}/{sid}.wav", f"{account.sid}/{sid}.mp3"]
    assert all(object_exists(settings, key) for key in keys)
    urls = {
        "2010 .json": f"{base2010(account)}/Recordings/{sid}.json",
        "2010 bare": f"{base2010(account)}/Recordings/{sid}",
        "2010 call": f"{base2010(account)}/Calls/{call}/Recordings/{sid}.json",
        "2008": f"{base2008(account)}/{sid}",
    }
    if how == "2008 method override":
        response = client.post(f"{base2008(account)}/{sid}?_method=DELETE", auth=account.auth)
    else:
        response = client.delete(urls[how], auth=account.auth)
    assert response.status_code == 204 and response.content == b""

    # The media is gone at once, from storage and from every path of both faces.
    assert not any(object_exists(settings, key) for key in keys)
    for ext in ("", ".wav", ".mp3"):
        assert_json_error(
            client.get(f"{base2010(account)}/Recordings/{sid}{ext}?IncludeSoftDeleted=true"),
            404,
            20404,
        )
        assert client.get(f"{base2008(account)}/{sid}{ext}").status_code == 404
    for ext in (".xml", ".json"):
        assert client.get(f"{base2008(account)}/{sid}{ext}").status_code == 404

    # The metadata is there only for those who ask for it.
    fetch = f"{base2010(account)}/Recordings/{sid}.json"
    assert_json_error(client.get(fetch, auth=account.auth), 404, 20404)
    assert_json_error(
        client.get(fetch + "?IncludeSoftDeleted=false", auth=account.auth), 404, 20404
    )
    shown = client.get(fetch + "?IncludeSoftDeleted=true", auth=account.auth)
    assert shown.status_code == 200, shown.text
    assert shown.json()["status"] == "deleted" and shown.json()["sid"] == sid
    call_fetch = client.get(
        f"{base2010(account)}/Calls/{call}/Recordings/{sid}.json?IncludeSoftDeleted=true",
        auth=account.auth,
    )
    assert call_fetch.json()["status"] == "deleted"

    listed = client.get(f"{base2010(account)}/Recordings.json", auth=account.auth).json()
    assert [r["sid"] for r in listed["recordings"]] == [kept]
    everything = client.get(
        f"{base2010(account)}/Recordings.json?IncludeSoftDeleted=true", auth=account.auth
    ).json()
    assert [(r["sid"], r["status"]) for r in everything["recordings"]] == [
        (sid, "deleted"),
        (kept, "completed"),
    ]
    in_call = client.get(
        f"{base2010(account)}/Calls/{call}/Recordings.json?IncludeSoftDeleted=true",
        auth=account.auth,
    ).json()
    assert [r["sid"] for r in in_call["recordings"]] == [sid, kept]
    old = client.get(base2008(account) + ".json", auth=account.auth).json()
    assert [r["sid"] for r in old["recordings"]] == [kept] and old["total"] == 1
    assert (
        client.get(base2008(account) + ".json?DateCreated>=2024-01-01", auth=account.auth).json()[
            "total"
        ]
        == 1
    )
    assert live_counts_agree(settings, account)

    # A second DELETE finds nothing to delete, on either face.
    assert_json_error(client.delete(fetch, auth=account.auth), 404, 20404)
    assert client.delete(f"{base2008(account)}/{sid}", auth=account.auth).status_code == 404


def test_soft_deleted_pages_by_token(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    made = [
        upload(client, settings, account, demo_wav, date_created=f"2024-03-0{d}T00:00:00Z").json()[
            "sid"
        ]
        for d in range(1, 7)
    ]
    for sid in made[1::2]:
        assert (
            client.delete(
                f"{base2010(account)}/Recordings/{sid}.json", auth=account.auth
            ).status_code
            == 204
        )
    url = f"{base2010(account)}/Recordings.json?IncludeSoftDeleted=true&PageSize=2"
    seen = []
    while url:
        body = client.get(url, auth=account.auth).json()
        seen += [(r["sid"], r["status"]) for r in body["recordings"]]
        url = body["next_page_uri"]
    expected = [(sid, "deleted" if i % 2 else "completed") for i, sid in enumerate(made)][::-1]
    assert seen == expected


def test_the_window_ends_and_gc_forgets(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    old, recent, crashed, live = (
        upload(client, settings, account, demo_wav).json()["sid"] for _ in range(4)
    )
    for sid in (old, recent):
        assert (
            client.delete(
                f"{base2010(account)}/Recordings/{sid}.json", auth=account.auth
            ).status_code
            == 204
        )
    backdate(settings, old, 41)
    backdate(settings, recent, 39)
    # A delete a crash cut short long ago: tombstone set, objects still stored.
    fetch_rows(
        settings.database_url,
        "UPDATE recordings SET deleted_at = now() - interval '50 days' WHERE sid = $1",
        crashed,
    )
    assert object_exists(settings, f"{account.sid}/{crashed}.wav")

    def shown() -> set[str]:
        body = client.get(
            f"{base2010(account)}/Recordings.json?IncludeSoftDeleted=true", auth=account.auth
        ).json()
        return {r["sid"] for r in body["recordings"]}

    # Past the window a row is no longer shown, even before gc has run.
    assert shown() == {recent, live}
    assert_json_error(
        client.get(
            f"{base2010(account)}/Recordings/{old}.json?IncludeSoftDeleted=true", auth=account.auth
        ),
        404,
        20404,
    )

    purged, forgotten = gc(settings)
    assert purged >= 1 and forgotten >= 2
    assert not object_exists(settings, f"{account.sid}/{crashed}.wav")
    rows = fetch_rows(
        settings.database_url, "SELECT sid FROM recordings WHERE account_sid = $1", account.sid
    )
    assert {r["sid"] for r in rows} == {recent, live}
    assert shown() == {recent, live}
    assert live_counts_agree(settings, account)
    assert client.get(f"{base2010(account)}/Recordings/{live}").content == demo_wav


def test_deleted_objects_kept_until_gc_keep_their_meaning(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    """RECORDINGS_DELETED_RETENTION_SECONDS still keeps the objects (never served) until gc."""
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    # What Catalog.delete does when objects are kept: the tombstone alone.
    fetch_rows(
        settings.database_url,
        "UPDATE recordings SET deleted_at = now() - interval '2 hours' WHERE sid = $1",
        sid,
    )
    key = f"{account.sid}/{sid}.wav"
    assert client.get(f"{base2010(account)}/Recordings/{sid}").status_code == 404
    gc(settings, retention=timedelta(hours=3))
    assert object_exists(settings, key)
    purged, _ = gc(settings, retention=timedelta(hours=1))
    assert purged >= 1 and not object_exists(settings, key)
    body = client.get(
        f"{base2010(account)}/Recordings/{sid}.json?IncludeSoftDeleted=true", auth=account.auth
    )
    assert body.json()["status"] == "deleted"


def test_cli_gc_reports_both_passes(settings: Settings) -> None:
    result = run_recordings(
        settings, "gc", "--grace", "3600", RECORDINGS_SOFT_DELETE_RETENTION_DAYS="40"
    )
    assert "purged" in result.stdout and "past the soft-delete window" in result.stdout
