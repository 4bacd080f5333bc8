"""The authenticated list: paging arithmetic, page URIs, every filter, against real PostgreSQL."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg
import httpx
import pytest
import xmltodict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from db.recordings import Recording
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, Ingest, new_account
from tests.support.rows import insert_recordings, recording_row
from tests.support.stack import ServerThread


def insert_rows(
    dsn: str, account_sid: str, moments: list[datetime], call_sids: list[str]
) -> list[Recording]:
    """Rows only: the list never touches storage."""
    rows = [
        recording_row(
            account_sid,
            call_sid=call_sid,
            duration=7,
            date_created=moment,
            date_updated=moment,
            wav_etag='"x"',
        )
        for moment, call_sid in zip(moments, call_sids, strict=True)
    ]
    return insert_recordings(dsn, rows)


def listed(client: httpx.Client, account: Account, query: str = "", suffix: str = ".json") -> dict:
    response = client.get(f"{account.base}{suffix}?{query}", auth=account.auth)
    assert response.status_code == 200, response.text
    return response.json()


def newest_first(rows: list[Recording]) -> list[str]:
    return [r.sid for r in sorted(rows, key=lambda r: (r.date_created, r.sid), reverse=True)]


DAY = datetime(2009, 7, 6, tzinfo=UTC)


@pytest.fixture(scope="module")
def boundary_account(settings: Settings) -> tuple[Account, list[Recording], str]:
    account = new_account(settings.database_url)
    call = new_sid("CA")
    moments = [
        DAY - timedelta(microseconds=1),  # the last instant of July 5th
        DAY,  # the first instant of July 6th
        DAY + timedelta(hours=12),
        DAY + timedelta(days=1) - timedelta(microseconds=1),  # the last instant of July 6th
        DAY + timedelta(days=1),  # midnight starting July 7th
        DAY - timedelta(days=2),  # July 4th, 00:00
    ]
    calls = [call, new_sid("CA"), call, new_sid("CA"), new_sid("CA"), call]
    rows = insert_rows(settings.database_url, account.sid, moments, calls)
    return account, rows, call


def sids_for(client: httpx.Client, account: Account, query: str) -> list[str]:
    return [r["sid"] for r in listed(client, account, query + "&num=1000")["recordings"]]


@pytest.mark.parametrize(
    ("query", "indexes"),
    [
        ("DateCreated=2009-07-06", [1, 2, 3]),
        ("DateCreated>=2009-07-06", [1, 2, 3, 4]),
        ("DateCreated<=2009-07-06", [0, 1, 2, 3, 5]),
        ("DateCreated>=2009-07-04&DateCreated<=2009-07-06", [0, 1, 2, 3, 5]),
        ("DateCreated%3E%3D2009-07-06", [1, 2, 3, 4]),
        ("DateCreated%3E=2009-07-06", [1, 2, 3, 4]),
        ("DateCreated%3E%3D=2009-07-06", [1, 2, 3, 4]),
        ("DateCreated>%3D2009-07-06", [1, 2, 3, 4]),
        ("DateCreated%3C%3D2009-07-05", [0, 5]),
        ("DateCreated<=2009-07-05", [0, 5]),
        ("DateCreated=2009-07-07", [4]),
        ("DateCreated=2009-07-05", [0]),
        ("DateCreated>=2009-07-08", []),
    ],
)
def test_date_filters_at_day_boundaries(
    client: httpx.Client,
    boundary_account: tuple[Account, list[Recording], str],
    query: str,
    indexes: list[int],
) -> None:
    account, rows, _ = boundary_account
    expected = newest_first([rows[i] for i in indexes])
    assert sids_for(client, account, query) == expected


def test_call_sid_filter(
    client: httpx.Client, boundary_account: tuple[Account, list[Recording], str]
) -> None:
    account, rows, call = boundary_account
    expected = newest_first([rows[i] for i in (0, 2, 5)])
    assert sids_for(client, account, f"CallSid={call}") == expected
    both = sids_for(client, account, f"CallSid={call}&DateCreated=2009-07-06")
    assert both == [rows[2].sid]
    assert sids_for(client, account, f"CallSid={new_sid('CA')}") == []


def test_filters_raw_on_the_wire(
    server: ServerThread, boundary_account: tuple[Account, list[Recording], str]
) -> None:
    """httpx would encode '>' itself; send the old API's literal key byte for byte."""
    account, rows, _ = boundary_account
    url = httpx.URL(server.base_url).copy_with(
        raw_path=f"{account.base}.json?DateCreated>=2009-07-06&DateCreated<=2009-07-06".encode()
    )
    response = httpx.get(url, auth=account.auth)
    assert [r["sid"] for r in response.json()["recordings"]] == newest_first(rows[1:4])


def test_empty_list(client: httpx.Client, account: Account) -> None:
    xml = client.get(account.base, auth=account.auth)
    attrs = xmltodict.parse(xml.content)["TwilioResponse"]["Recordings"]
    assert {k: attrs[f"@{k}"] for k in ("page", "numpages", "total", "start", "end")} == {
        "page": "0",
        "numpages": "0",
        "total": "0",
        "start": "0",
        "end": "0",
    }
    assert attrs["@pagesize"] == "50"
    assert "Recording" not in attrs
    assert attrs["@nextpageuri"] == "" and attrs["@lastpageuri"] == ""


@pytest.fixture(scope="module")
def paged_account(settings: Settings) -> tuple[Account, list[Recording]]:
    account = new_account(settings.database_url)
    base = datetime(2010, 1, 1, tzinfo=UTC)
    # Some share a timestamp so the SID tie-break matters.
    moments = [base + timedelta(minutes=i // 3) for i in range(23)]
    rows = insert_rows(
        settings.database_url, account.sid, moments, [new_sid("CA") for _ in moments]
    )
    return account, rows


def test_paging_arithmetic_and_uris(
    client: httpx.Client, paged_account: tuple[Account, list[Recording]]
) -> None:
    account, rows = paged_account
    order = newest_first(rows)
    body = listed(client, account, "num=10&page=1")
    assert (body["page"], body["num_pages"], body["page_size"], body["total"]) == (1, 3, 10, 23)
    assert (body["start"], body["end"]) == (10, 19)
    assert [r["sid"] for r in body["recordings"]] == order[10:20]
    base = f"{account.base}.json"
    assert body["uri"] == f"{base}?num=10&page=1"
    assert body["first_page_uri"] == f"{base}?num=10&page=0"
    assert body["previous_page_uri"] == f"{base}?num=10&page=0"
    assert body["next_page_uri"] == f"{base}?num=10&page=2"
    assert body["last_page_uri"] == f"{base}?num=10&page=2"
    last = listed(client, account, "num=10&page=2")
    assert (last["start"], last["end"]) == (20, 22)
    assert last["next_page_uri"] is None
    first = listed(client, account, "PageSize=10&Page=0")
    assert first["previous_page_uri"] is None
    assert first["end"] == 9


def test_page_past_the_end_is_404(
    client: httpx.Client, paged_account: tuple[Account, list[Recording]]
) -> None:
    account, _ = paged_account
    response = client.get(f"{account.base}?num=10&page=3", auth=account.auth)
    assert response.status_code == 404
    assert b"<RestException>" in response.content


def test_xml_list_has_the_seed_shape(
    client: httpx.Client, paged_account: tuple[Account, list[Recording]]
) -> None:
    account, rows = paged_account
    response = client.get(f"{account.base}?num=5", auth=account.auth)
    assert response.headers["content-type"].startswith(("application/xml", "text/xml"))
    doc = xmltodict.parse(response.content)["TwilioResponse"]["Recordings"]
    assert doc["@page"] == "0" and doc["@numpages"] == "5" and doc["@pagesize"] == "5"
    assert doc["@total"] == "23" and doc["@start"] == "0" and doc["@end"] == "4"
    assert doc["@nextpageuri"] == f"{account.base}?num=5&page=1"
    assert doc["@previouspageuri"] == ""
    items = doc["Recording"]
    assert [i["Sid"] for i in items] == newest_first(rows)[:5]
    for item in items:
        assert list(item) == [
            "Sid",
            "AccountSid",
            "CallSid",
            "Duration",
            "DateCreated",
            "DateUpdated",
        ]
        assert item["AccountSid"] == account.sid


def test_uris_keep_filters_and_read_back(
    client: httpx.Client, boundary_account: tuple[Account, list[Recording], str]
) -> None:
    account, rows, call = boundary_account
    body = listed(
        client, account, f"CallSid={call}&DateCreated>=2009-07-04&DateCreated<=2009-07-06&num=1"
    )
    assert body["total"] == 3
    next_uri = body["next_page_uri"]
    assert "DateCreated%3E=2009-07-04" in next_uri and "DateCreated%3C=2009-07-06" in next_uri
    following = client.get(next_uri, auth=account.auth).json()
    assert following["page"] == 1 and following["total"] == 3
    assert following["recordings"][0]["sid"] == newest_first([rows[i] for i in (0, 2, 5)])[1]


def test_csv(client: httpx.Client, paged_account: tuple[Account, list[Recording]]) -> None:
    account, rows = paged_account
    response = client.get(f"{account.base}.csv?num=3", auth=account.auth)
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == "Sid,AccountSid,CallSid,Duration,DateCreated,DateUpdated"
    assert [line.split(",")[0] for line in lines[1:]] == newest_first(rows)[:3]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(size=st.integers(1, 30))
def test_every_recording_appears_exactly_once_across_pages(
    client: httpx.Client, paged_account: tuple[Account, list[Recording]], size: int
) -> None:
    account, rows = paged_account
    seen: list[str] = []
    pages = math.ceil(len(rows) / size)
    for page in range(pages):
        body = listed(client, account, f"num={size}&page={page}")
        assert body["num_pages"] == pages
        assert body["start"] == page * size
        assert body["end"] == body["start"] + len(body["recordings"]) - 1
        seen += [r["sid"] for r in body["recordings"]]
    assert seen == newest_first(rows)


days = st.dates(min_value=datetime(2009, 7, 1).date(), max_value=datetime(2009, 7, 10).date())


@pytest.fixture(scope="module")
def spread_account(settings: Settings) -> tuple[Account, list[Recording]]:
    account = new_account(settings.database_url)
    start = datetime(2009, 7, 1, tzinfo=UTC)
    moments = [start + timedelta(hours=7 * i, microseconds=i) for i in range(34)]
    moments += [datetime(2009, 7, d, tzinfo=UTC) for d in range(1, 11)]
    rows = insert_rows(
        settings.database_url, account.sid, moments, [new_sid("CA") for _ in moments]
    )
    return account, rows


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(low=st.none() | days, high=st.none() | days, exact=st.none() | days, encode=st.booleans())
def test_filters_match_a_model(
    client: httpx.Client,
    spread_account: tuple[Account, list[Recording]],
    low,
    high,
    exact,
    encode: bool,
) -> None:
    account, rows = spread_account
    parts = []
    expected = rows
    if low is not None:
        key = quote("DateCreated>=", safe="") if encode else "DateCreated>"
        parts.append(f"{key}={low.isoformat()}" if not encode else f"{key}{low.isoformat()}")
        expected = [r for r in expected if r.date_created.date() >= low]
    if high is not None:
        parts.append(f"DateCreated<={high.isoformat()}")
        expected = [r for r in expected if r.date_created.date() <= high]
    if exact is not None:
        parts.append(f"DateCreated={exact.isoformat()}")
        expected = [r for r in expected if r.date_created.date() == exact]
    got = sids_for(client, account, "&".join(parts))
    assert got == newest_first(expected)


def test_ingested_recordings_are_listed(
    client: httpx.Client, account: Account, ingest: Ingest
) -> None:
    made = [ingest(account).json()["sid"] for _ in range(3)]
    body = listed(client, account)
    assert [r["sid"] for r in body["recordings"]] == made[::-1]


def test_total_follows_ingest_delete_and_purge(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest
) -> None:
    """The unfiltered total comes from a counter kept by triggers: it must match count(*)."""

    def total() -> int:
        return int(listed(client, account)["total"])

    made = [ingest(account).json()["sid"] for _ in range(4)]
    assert total() == 4
    assert client.delete(f"{account.base}/{made[0]}", auth=account.auth).status_code == 204
    assert total() == 3

    async def tamper() -> tuple[int, int]:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute("UPDATE recordings SET deleted_at = now() WHERE sid = $1", made[1])
            await conn.execute("DELETE FROM recordings WHERE sid = $1", made[1])
            await conn.execute("DELETE FROM recordings WHERE sid = $1", made[2])
            counted = await conn.fetchval(
                "SELECT count(*) FROM recordings WHERE account_sid = $1 AND deleted_at IS NULL",
                account.sid,
            )
            kept = await conn.fetchval(
                "SELECT live FROM recording_counts WHERE account_sid = $1", account.sid
            )
            return int(counted), int(kept)
        finally:
            await conn.close()

    assert asyncio.run(tamper()) == (1, 1)
    assert total() == 1
    assert listed(client, account, "DateCreated>=2000-01-01")["total"] == 1
