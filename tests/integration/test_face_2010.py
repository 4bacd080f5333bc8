"""The 2010-04-01 face over HTTP: fields, the list envelope, PageToken paging, filters, errors,
auth, media, and the two faces reading one store."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from service.settings import Settings
from service.sids import new_sid
from tests.support.api2010 import (
    ENVELOPE_KEYS,
    RECORDING_KEYS,
    assert_json_error,
    base2008,
    base2010,
    upload,
)
from tests.support.clients import Account
from tests.support.rows import fetch_rows, insert_recordings, recording_row
from tests.support.stack import ServerThread


def fetch(client: httpx.Client, account: Account, sid: str, query: str = "") -> httpx.Response:
    return client.get(f"{base2010(account)}/Recordings/{sid}.json?{query}", auth=account.auth)


def listing(client: httpx.Client, account: Account, query: str = "") -> dict:
    response = client.get(f"{base2010(account)}/Recordings.json?{query}", auth=account.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ENVELOPE_KEYS
    return body


def sids(body: dict) -> list[str]:
    return [r["sid"] for r in body["recordings"]]


def made(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    wav: bytes,
    moments: list[str],
    **extra: str,
) -> list[str]:
    """Recordings created at these moments; their SIDs newest first."""
    pairs = [
        (moment, upload(client, settings, account, wav, date_created=moment, **extra).json()["sid"])
        for moment in moments
    ]
    return [sid for _, sid in sorted(pairs, key=lambda p: (p[0], p[1]), reverse=True)]


def test_fetch_gives_every_field(
    client: httpx.Client, server, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    conference = new_sid("CF")
    call = new_sid("CA")
    sid = upload(
        client,
        settings,
        account,
        demo_wav,
        call_sid=call,
        date_created="2020-01-02T03:04:06Z",
        Source="DialVerb",
        StartTime="2020-01-02T03:04:05+00:00",
        ConferenceSid=conference,
    ).json()["sid"]
    response = fetch(client, account, sid)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == RECORDING_KEYS
    path = f"{base2010(account)}/Recordings/{sid}"
    assert body == {
        "account_sid": account.sid,
        "api_version": "2010-04-01",
        "call_sid": call,
        "conference_sid": conference,
        "date_created": "Thu, 02 Jan 2020 03:04:06 +0000",
        "date_updated": "Thu, 02 Jan 2020 03:04:06 +0000",
        "start_time": "Thu, 02 Jan 2020 03:04:05 +0000",
        "duration": "3",
        "sid": sid,
        "price": None,
        "price_unit": None,
        "status": "completed",
        "channels": 1,
        "source": "DialVerb",
        "error_code": None,
        "uri": path + ".json",
        "encryption_details": None,
        "subresource_uris": {
            "add_on_results": path + "/AddOnResults.json",
            "transcriptions": path + "/Transcriptions.json",
        },
        "media_url": server.base_url + path,
    }
    for name, key in (("Transcriptions", "transcriptions"), ("AddOnResults", "add_on_results")):
        sub = client.get(f"{path}/{name}.json", auth=account.auth)
        assert sub.status_code == 200, sub.text
        assert sub.json() == {
            key: [],
            "end": 0,
            "first_page_uri": f"{path}/{name}.json?PageSize=50&Page=0",
            "next_page_uri": None,
            "page": 0,
            "page_size": 50,
            "previous_page_uri": None,
            "start": 0,
            "uri": f"{path}/{name}.json?PageSize=50&Page=0",
        }
    assert_json_error(
        client.get(
            f"{base2010(account)}/Recordings/RE{'0' * 32}/Transcriptions.json", auth=account.auth
        ),
        404,
        20404,
    )


def test_defaults_when_ingest_says_nothing_more(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    body = fetch(client, account, sid).json()
    assert body["source"] == "RecordVerb"
    # Without the platform's StartTime, the recording started when it was created.
    assert body["start_time"] == body["date_created"]
    assert body["conference_sid"] is None
    stored = fetch_rows(
        settings.database_url, "SELECT start_time, date_created FROM recordings WHERE sid = $1", sid
    )
    assert stored[0]["start_time"] == stored[0]["date_created"]


def test_rows_stored_without_a_start_time_show_their_creation(
    client: httpx.Client, settings: Settings, account: Account
) -> None:
    # Rows stored before ingest filled start_time in keep it null: every face reads the default.
    (row,) = insert_recordings(settings.database_url, [recording_row(account.sid, settings)])
    fetch_rows(
        settings.database_url, "UPDATE recordings SET start_time = NULL WHERE sid = $1", row.sid
    )
    body = fetch(client, account, row.sid).json()
    assert body["start_time"] == "Sun, 06 May 2012 07:08:09 +0000" == body["date_created"]
    listed = listing(client, account)
    assert [r["start_time"] for r in listed["recordings"] if r["sid"] == row.sid] == [
        body["date_created"]
    ]
    # The page shows StartTime to the account's own credentials (not to the public).
    page = client.get(f"{base2010(account)}/Recordings/{row.sid}.html", auth=account.auth)
    assert page.status_code == 200
    assert "<dt>Started</dt><dd>2012-05-06 07:08:09 UTC</dd>" in page.text


@pytest.mark.parametrize(
    "params",
    [
        {"Source": "Voicemail"},
        {"Source": "recordverb"},
        {"ConferenceSid": "CF123"},
        {"ConferenceSid": "CA" + "0" * 32},
        {"StartTime": "yesterday"},
        {"StartTime": "2020-02-30T00:00:00Z"},
    ],
)
def test_ingest_refuses_bad_2010_fields(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes, params: dict
) -> None:
    response = upload(client, settings, account, demo_wav, expect=400, **params)
    assert response.status_code == 400


def test_call_scoped_list_and_fetch(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call, other_call = new_sid("CA"), new_sid("CA")
    mine = made(
        client,
        settings,
        account,
        demo_wav,
        ["2021-01-01T00:00:00Z", "2021-01-02T00:00:00Z"],
        CallSid=call,
    )
    theirs = upload(client, settings, account, demo_wav, call_sid=other_call).json()["sid"]
    calls = f"{base2010(account)}/Calls/{call}/Recordings"
    body = client.get(calls + ".json", auth=account.auth).json()
    assert set(body) == ENVELOPE_KEYS
    assert sids(body) == mine
    assert body["uri"] == f"{calls}.json?PageSize=50&Page=0"
    one = client.get(f"{calls}/{mine[0]}.json", auth=account.auth)
    assert one.status_code == 200
    item = one.json()
    assert item["track"] == "both"
    assert "media_url" not in item and "subresource_uris" not in item
    assert item["uri"] == f"{calls}/{mine[0]}.json"
    assert_json_error(client.get(f"{calls}/{theirs}.json", auth=account.auth), 404, 20404)
    assert_json_error(client.delete(f"{calls}/{theirs}.json", auth=account.auth), 404, 20404)
    # Starting or updating a live recording is the voice platform's job.
    for url in (f"{calls}/{mine[0]}.json", calls + ".json"):
        refused = client.post(url, auth=account.auth, data={"Status": "paused"})
        assert_json_error(refused, 405, 20004)
        assert "GET" in refused.headers["allow"]
    assert client.delete(f"{calls}/{mine[0]}.json", auth=account.auth).status_code == 204
    assert sids(client.get(calls + ".json", auth=account.auth).json()) == mine[1:]


def test_pages_by_token_cover_every_recording_once(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    # Two share a DateCreated: the SID breaks the tie, across a page boundary too.
    moments = [f"2022-03-0{d}T10:00:00Z" for d in (1, 2, 3, 3, 4, 5, 6)]
    expected = made(client, settings, account, demo_wav, moments)
    seen: list[str] = []
    body = listing(client, account, "PageSize=3")
    pages = [body]
    while body["next_page_uri"]:
        response = client.get(body["next_page_uri"], auth=account.auth)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == ENVELOPE_KEYS
        pages.append(body)
    for number, page in enumerate(pages):
        seen += sids(page)
        assert page["page"] == number
        assert page["page_size"] == 3
        assert page["start"] == 3 * number
        assert page["end"] == 3 * number + len(page["recordings"]) - 1
        assert page["first_page_uri"] == f"{base2010(account)}/Recordings.json?PageSize=3&Page=0"
    assert seen == expected
    assert [len(p["recordings"]) for p in pages] == [3, 3, 1]
    assert pages[-1]["next_page_uri"] is None
    assert pages[0]["previous_page_uri"] is None
    query = dict(parse_qsl(urlsplit(pages[1]["uri"]).query))
    assert query["PageSize"] == "3" and query["Page"] == "1" and query["PageToken"]
    # Back again: previous_page_uri gives exactly the rows of the page before.
    back = client.get(pages[2]["previous_page_uri"], auth=account.auth).json()
    assert sids(back) == sids(pages[1]) and back["page"] == 1
    front = client.get(back["previous_page_uri"], auth=account.auth).json()
    assert sids(front) == sids(pages[0]) and front["page"] == 0
    # A page number without a token is read by offset.
    assert sids(listing(client, account, "PageSize=3&Page=2")) == expected[6:]


def test_next_page_uri_carries_every_filter(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call = new_sid("CA")
    expected = made(
        client,
        settings,
        account,
        demo_wav,
        [f"2022-05-0{d}T00:00:00Z" for d in range(1, 6)],
        CallSid=call,
    )
    made(client, settings, account, demo_wav, ["2022-05-03T12:00:00Z"])
    query = f"CallSid={call}&DateCreated%3E=2022-05-02&DateCreated%3C=2022-05-04T00:00:00Z&IncludeSoftDeleted=false&PageSize=1"
    body = listing(client, account, query)
    seen = sids(body)
    while body["next_page_uri"]:
        kept = dict(parse_qsl(urlsplit(body["next_page_uri"]).query))
        assert kept["CallSid"] == call
        assert kept["DateCreated>"] == "2022-05-02"
        assert kept["DateCreated<"] == "2022-05-04T00:00:00Z"
        assert kept["IncludeSoftDeleted"] == "false"
        assert kept["PageSize"] == "1"
        body = client.get(body["next_page_uri"], auth=account.auth).json()
        seen += sids(body)
    assert seen == expected[1:4]


def test_date_filters_days_and_instants(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    moments = [
        "2020-01-01T10:00:00Z",
        "2020-01-02T00:00:00Z",
        "2020-01-02T12:00:00Z",
        "2020-01-03T00:00:00Z",
    ]
    by_moment = dict(
        zip(
            moments,
            [
                upload(client, settings, account, demo_wav, date_created=m).json()["sid"]
                for m in moments
            ],
            strict=True,
        )
    )

    def of(*picked: str) -> list[str]:
        return [by_moment[m] for m in sorted(picked, reverse=True)]

    d1, d2a, d2b, d3 = moments
    cases = {
        "DateCreated=2020-01-02": of(d2a, d2b),
        "DateCreated%3C=2020-01-02": of(d1, d2a, d2b),
        "DateCreated<=2020-01-02": of(d1, d2a, d2b),
        "DateCreated%3C%3D2020-01-02": of(d1, d2a, d2b),
        "DateCreated%3E=2020-01-02": of(d2a, d2b, d3),
        "DateCreated>=2020-01-02": of(d2a, d2b, d3),
        "DateCreated%3C=2020-01-02T00%3A00%3A00Z": of(d1, d2a),
        "DateCreated%3E=2020-01-02T00%3A00%3A00Z": of(d2a, d2b, d3),
        "DateCreated%3E=2020-01-02T00%3A00%3A01Z": of(d2b, d3),
        "DateCreated=2020-01-02T12%3A00%3A00Z": of(d2b),
        "DateCreated%3E=2020-01-02&DateCreated%3C=2020-01-02T12%3A00%3A00%2B00%3A00": of(d2a, d2b),
        "DateCreated%3E=2020-01-02T13%3A00%3A00%2B01%3A00": of(d2b, d3),
    }
    for query, expected in cases.items():
        assert sids(listing(client, account, query)) == expected, query


def test_conference_and_call_filters(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    conference, call = new_sid("CF"), new_sid("CA")
    in_conference = upload(client, settings, account, demo_wav, ConferenceSid=conference).json()[
        "sid"
    ]
    in_call = upload(client, settings, account, demo_wav, call_sid=call).json()["sid"]
    upload(client, settings, account, demo_wav)
    assert sids(listing(client, account, f"ConferenceSid={conference}")) == [in_conference]
    assert sids(listing(client, account, f"CallSid={call}")) == [in_call]
    assert sids(listing(client, account, f"CallSid={new_sid('CA')}")) == []


@pytest.mark.parametrize(
    "query",
    [
        "PageSize=0",
        "PageSize=1001",
        "PageSize=ten",
        "Page=-1",
        "PageToken=PTforged",
        "PageToken=nonsense%00%FF",
        "PageToken=" + "PT" + "A" * 48,
        "DateCreated=2020-13-45",
        "DateCreated%3C=yesterday",
        "DateCreated%3E=2020-01-02T25%3A00%3A00Z",
        "DateCreated=",
        "DateCreated%21=2020-01-01",
        "IncludeSoftDeleted=maybe",
        "IncludeSoftDeleted=1",
        "IncludeSoftDeleted=",
        "CallSid=CA123",
        "ConferenceSid=CF" + "g" * 32,
    ],
)
def test_bad_list_input_is_a_json_400(client: httpx.Client, account: Account, query: str) -> None:
    response = client.get(f"{base2010(account)}/Recordings.json?{query}", auth=account.auth)
    assert_json_error(response, 400, 20001)


def test_tampered_truncated_and_foreign_tokens_are_refused(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    other_account: Account,
    demo_wav: bytes,
) -> None:
    made(client, settings, account, demo_wav, ["2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z"])
    theirs = made(
        client, settings, other_account, demo_wav, ["2023-01-01T00:00:00Z", "2023-01-02T00:00:00Z"]
    )
    mine = listing(client, account, "PageSize=1")
    token = dict(parse_qsl(urlsplit(mine["next_page_uri"]).query))["PageToken"]
    foreign_page = client.get(
        f"{base2010(other_account)}/Recordings.json?PageSize=1", auth=other_account.auth
    ).json()
    foreign = dict(parse_qsl(urlsplit(foreign_page["next_page_uri"]).query))["PageToken"]
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    for bad in (token[:-4], token[:-1], flipped, token + "AA", foreign, token.lower()):
        response = client.get(
            f"{base2010(account)}/Recordings.json",
            params={"PageToken": bad, "PageSize": 1},
            auth=account.auth,
        )
        body = assert_json_error(response, 400, 20001)
        assert not any(sid in response.text for sid in theirs)
        assert "PageToken" in body["message"]
    # The same token still works for its own account, and only there.
    assert client.get(mine["next_page_uri"], auth=account.auth).status_code == 200
    assert_json_error(
        client.get(
            mine["next_page_uri"].replace(account.sid, other_account.sid), auth=other_account.auth
        ),
        400,
        20001,
    )


def test_credentials(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    other_account: Account,
    demo_wav: bytes,
) -> None:
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    theirs = upload(client, settings, other_account, demo_wav).json()["sid"]
    for path in (
        f"/Recordings/{sid}.json",
        "/Recordings.json",
        f"/Calls/{new_sid('CA')}/Recordings.json",
    ):
        url = base2010(account) + path
        anonymous = client.get(url)
        assert_json_error(anonymous, 401, 20003)
        assert anonymous.headers["www-authenticate"].startswith("Basic")
        assert_json_error(client.get(url, auth=(account.sid, "0" * 32)), 401, 20003)
        assert_json_error(client.get(url, auth=other_account.auth), 403, 20403)
    assert_json_error(client.delete(f"{base2010(account)}/Recordings/{sid}.json"), 401, 20003)
    assert_json_error(
        client.delete(f"{base2010(account)}/Recordings/{sid}.json", auth=other_account.auth),
        403,
        20403,
    )
    # Another account's SID under one's own account is simply not there.
    assert_json_error(fetch(client, account, theirs), 404, 20404)
    assert_json_error(
        client.delete(f"{base2010(account)}/Recordings/{theirs}.json", auth=account.auth),
        404,
        20404,
    )
    assert_json_error(client.get(f"{base2010(account)}/Recordings/{theirs}"), 404, 20404)
    assert fetch(client, other_account, theirs).status_code == 200


def test_media_is_served_as_the_2008_media(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    same = (
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "accept-ranges",
        "cache-control",
        "content-disposition",
        "access-control-allow-origin",
    )
    for ext in ("", ".wav", ".mp3"):
        old = client.get(f"{base2008(account)}/{sid}{ext}")
        new = client.get(f"{base2010(account)}/Recordings/{sid}{ext}")
        assert new.status_code == old.status_code == 200
        assert new.content == old.content
        assert {h: new.headers.get(h) for h in same} == {h: old.headers.get(h) for h in same}
        head = client.head(f"{base2010(account)}/Recordings/{sid}{ext}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == new.headers["content-length"]
        part = client.get(
            f"{base2010(account)}/Recordings/{sid}{ext}", headers={"Range": "bytes=0-99"}
        )
        assert part.status_code == 206 and part.content == new.content[:100]
    assert client.get(f"{base2010(account)}/Recordings/{sid}").content == demo_wav
    assert_json_error(client.get(f"{base2010(account)}/Recordings/{sid}.ogg"), 404, 20404)


def test_media_url_follows_the_request_or_the_setting(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    path = f"{base2010(account)}/Recordings/{sid}"
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, the tests' address.
    proxied = client.get(
        path + ".json",
        auth=account.auth,
        headers={"Host": "recordings.example:8443", "X-Forwarded-Proto": "https"},
    )
    assert proxied.json()["media_url"] == f"https://recordings.example:8443{path}"
    listed = client.get(
        f"{base2010(account)}/Recordings.json",
        auth=account.auth,
        headers={"Host": "recordings.example"},
    )
    assert listed.json()["recordings"][0]["media_url"] == f"http://recordings.example{path}"
    public = settings.model_copy(update={"public_url": "https://media.example.com/calls/"})
    with ServerThread(public) as served:
        body = httpx.get(served.base_url + path + ".json", auth=account.auth).json()
    assert body["media_url"] == f"https://media.example.com/calls{path}"


def test_settings_refuse_a_public_url_that_is_not_one() -> None:
    with pytest.raises(ValueError):
        Settings(public_url="media.example.com")


def test_both_faces_read_one_store(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    first = upload(client, settings, account, demo_wav, date_created="2024-01-01T00:00:00Z").json()[
        "sid"
    ]
    second = upload(
        client, settings, account, demo_wav, date_created="2024-01-02T00:00:00Z"
    ).json()["sid"]
    old = client.get(base2008(account) + ".json", auth=account.auth).json()
    assert [r["sid"] for r in old["recordings"]] == [second, first]
    assert sids(listing(client, account)) == [second, first]
    # A DELETE on the 2008 face is seen by the 2010 face ...
    assert client.delete(f"{base2008(account)}/{first}", auth=account.auth).status_code == 204
    assert_json_error(fetch(client, account, first), 404, 20404)
    assert sids(listing(client, account)) == [second]
    assert fetch(client, account, first, "IncludeSoftDeleted=true").json()["status"] == "deleted"
    # ... and one on the 2010 face (without .json, as the spec allows) by the 2008 face.
    assert (
        client.delete(f"{base2010(account)}/Recordings/{second}", auth=account.auth).status_code
        == 204
    )
    for ext in ("", ".xml", ".json", ".wav", ".mp3"):
        assert client.get(f"{base2008(account)}/{second}{ext}").status_code == 404
    old = client.get(base2008(account) + ".json", auth=account.auth).json()
    assert old["recordings"] == [] and old["total"] == 0


def test_the_face_has_its_own_openapi_document(client: httpx.Client) -> None:
    document = client.get("/2010-04-01/openapi.json").json()
    assert document["info"]["version"] == "2010-04-01"
    assert "/2010-04-01/Accounts/{account_sid}/Recordings.json" in document["paths"]
    assert not any(p.startswith("/2008") for p in document["paths"])
    main = client.get("/openapi.json").json()
    assert not any(p.startswith("/2010") for p in main["paths"])


def test_unknown_paths_under_the_face_are_json_errors(
    client: httpx.Client, account: Account
) -> None:
    assert_json_error(
        client.get(f"{base2010(account)}/Nothing.json", auth=account.auth), 404, 20404
    )
    assert_json_error(
        client.put(f"{base2010(account)}/Recordings.json", auth=account.auth), 405, 20004
    )


def test_datetimes_are_utc_rfc2822(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    sid = upload(
        client,
        settings,
        account,
        demo_wav,
        date_created="2021-06-01T23:30:00-02:00",
        StartTime="Tue, 01 Jun 2021 23:29:58 -0200",
    ).json()["sid"]
    body = fetch(client, account, sid).json()
    assert body["date_created"] == "Wed, 02 Jun 2021 01:30:00 +0000"
    assert body["start_time"] == "Wed, 02 Jun 2021 01:29:58 +0000"
    assert (
        datetime(2021, 6, 2, 1, 30, tzinfo=UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
        == body["date_created"]
    )
