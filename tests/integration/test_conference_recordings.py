"""A conference's recordings through the 2010 face: list (the account list's filters and
PageToken paging), fetch and delete, in twilio-oai's conference_recording shape."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx

from service.settings import Settings
from service.sids import new_sid
from tests.support.api2010 import (
    ENVELOPE_KEYS,
    RECORDING_KEYS,
    assert_json_error,
    base2010,
    upload,
)
from tests.support.clients import Account

# The conference resource has the recording's fields without its subresources and media URL.
CONFERENCE_KEYS = RECORDING_KEYS - {"subresource_uris", "media_url"}


def conference_path(account: Account, conference_sid: str) -> str:
    return f"{base2010(account)}/Conferences/{conference_sid}/Recordings"


def in_conference(
    client: httpx.Client, settings: Settings, account: Account, wav: bytes, cf: str, day: str
) -> str:
    return upload(
        client,
        settings,
        account,
        wav,
        date_created=f"{day}T10:00:00Z",
        ConferenceSid=cf,
        Source="Conference",
    ).json()["sid"]


def test_list_fetch_and_delete_a_conferences_recordings(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    cf, other_cf = new_sid("CF"), new_sid("CF")
    days = ["2024-03-01", "2024-03-02", "2024-03-03"]
    mine = [in_conference(client, settings, account, demo_wav, cf, day) for day in days]
    in_conference(client, settings, account, demo_wav, other_cf, "2024-03-02")
    upload(client, settings, account, demo_wav)  # a call's recording, in no conference
    path = conference_path(account, cf)

    listed = client.get(path + ".json", auth=account.auth)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert set(body) == ENVELOPE_KEYS
    assert [r["sid"] for r in body["recordings"]] == mine[::-1]
    first = body["recordings"][0]
    assert set(first) == CONFERENCE_KEYS
    assert first["conference_sid"] == cf and first["source"] == "Conference"
    assert first["uri"] == f"{path}/{mine[-1]}.json"
    assert body["uri"] == f"{path}.json?PageSize=50&Page=0"

    # The account list's filters, and PageToken paging whose URIs carry them on.
    after = client.get(path + ".json?DateCreated>=2024-03-02&PageSize=1", auth=account.auth)
    page = after.json()
    assert [r["sid"] for r in page["recordings"]] == [mine[2]]
    seen = [mine[2]]
    while page["next_page_uri"]:
        query = dict(parse_qsl(urlsplit(page["next_page_uri"]).query))
        assert query["DateCreated>"] == "2024-03-02" and "PageToken" in query
        assert page["next_page_uri"].startswith(path + ".json?")
        page = client.get(page["next_page_uri"], auth=account.auth).json()
        seen += [r["sid"] for r in page["recordings"]]
    assert seen == [mine[2], mine[1]]
    one_day = client.get(path + ".json?DateCreated=2024-03-01", auth=account.auth).json()
    assert [r["sid"] for r in one_day["recordings"]] == [mine[0]]

    fetched = client.get(f"{path}/{mine[0]}.json", auth=account.auth)
    assert fetched.status_code == 200 and fetched.json()["sid"] == mine[0]
    assert set(fetched.json()) == CONFERENCE_KEYS
    # A recording of another conference is not this conference's.
    foreign = conference_path(account, other_cf) + f"/{mine[0]}.json"
    assert_json_error(client.get(foreign, auth=account.auth), 404, 20404)
    assert_json_error(client.delete(foreign, auth=account.auth), 404, 20404)

    assert client.delete(f"{path}/{mine[0]}.json", auth=account.auth).status_code == 204
    assert_json_error(client.get(f"{path}/{mine[0]}.json", auth=account.auth), 404, 20404)
    assert_json_error(client.delete(f"{path}/{mine[0]}.json", auth=account.auth), 404, 20404)
    gone = client.get(f"{path}/{mine[0]}.json?IncludeSoftDeleted=true", auth=account.auth)
    assert gone.status_code == 200 and gone.json()["status"] == "deleted"
    left = client.get(path + ".json", auth=account.auth).json()
    assert [r["sid"] for r in left["recordings"]] == [mine[2], mine[1]]


def test_conference_paths_refuse_what_the_account_paths_refuse(
    client: httpx.Client, account: Account, other_account: Account
) -> None:
    cf = new_sid("CF")
    path = conference_path(account, cf)
    assert_json_error(client.get(path + ".json"), 401, 20003)
    assert_json_error(client.get(path + ".json", auth=other_account.auth), 403)
    empty = client.get(path + ".json", auth=account.auth).json()
    assert empty["recordings"] == [] and empty["next_page_uri"] is None
    for bad in ("CFnope", "CA" + "0" * 32):
        assert_json_error(
            client.get(conference_path(account, bad) + ".json", auth=account.auth), 404, 20404
        )
    assert_json_error(client.get(path + ".json?DateCreated=yesterday", auth=account.auth), 400)
    assert_json_error(client.get(path + ".json?PageToken=forged", auth=account.auth), 400)
    assert_json_error(client.get(f"{path}/REnope.json", auth=account.auth), 404, 20404)
