"""twilio-python 9.13.0, unmodified, against a running service: only its base URL changed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from service.settings import Settings
from service.sids import new_sid
from tests.support.api2010 import upload
from tests.support.clients import Account


def twilio_client(base_url: str, account: Account, token: str | None = None) -> Client:
    # An empty environment: TWILIO_EDGE/TWILIO_REGION, if set, would rewrite the host.
    client = Client(account.sid, token or account.token, environment={})
    client.api.base_url = base_url
    return client


@pytest.fixture
def twilio(server, account: Account) -> Iterator[Client]:  # type: ignore[no-untyped-def]
    yield twilio_client(server.base_url, account)


def recordings_at(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    wav: bytes,
    moments: list[str],
    **extra: str,
) -> list[str]:
    """Recordings made at these moments; their SIDs newest first."""
    made = [
        (m, upload(client, settings, account, wav, date_created=m, **extra).json()["sid"])
        for m in moments
    ]
    return [sid for _, sid in sorted(made, reverse=True)]


def test_list_and_stream_see_every_recording_once_newest_first(
    twilio: Client, client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    expected = recordings_at(
        client, settings, account, demo_wav, [f"2021-04-0{d}T08:00:00Z" for d in range(1, 8)]
    )
    assert [r.sid for r in twilio.recordings.list(page_size=2)] == expected
    assert [r.sid for r in twilio.recordings.list()] == expected
    assert [r.sid for r in twilio.recordings.stream(limit=5)] == expected[:5]
    assert [r.sid for r in twilio.recordings.stream(limit=5, page_size=2)] == expected[:5]
    assert [
        r.sid for r in twilio.api.v2010.accounts(account.sid).recordings.list(limit=3)
    ] == expected[:3]


def test_page_next_page_and_previous_page(
    twilio: Client, client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    expected = recordings_at(
        client, settings, account, demo_wav, [f"2021-05-0{d}T08:00:00Z" for d in range(1, 8)]
    )
    page = twilio.recordings.page(page_size=3)
    pages = []
    while page is not None:
        pages.append([r.sid for r in page])
        page = page.next_page()
    assert pages == [expected[0:3], expected[3:6], expected[6:]]
    second = twilio.recordings.page(page_size=3).next_page()
    assert [r.sid for r in second.previous_page()] == expected[0:3]
    # A page fetched by its token alone, as the SDK's get_page() does.
    third = twilio.recordings.get_page(second.next_page_url)
    assert [r.sid for r in third] == expected[6:]


def test_every_filter_through_the_librarys_own_arguments(
    twilio: Client, client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call, conference = new_sid("CA"), new_sid("CF")
    moments = [
        "2020-01-01T10:00:00Z",
        "2020-01-02T00:00:00Z",
        "2020-01-02T12:00:00Z",
        "2020-01-03T00:00:00Z",
    ]
    sids = {
        m: upload(client, settings, account, demo_wav, date_created=m).json()["sid"]
        for m in moments
    }
    in_call = upload(
        client, settings, account, demo_wav, call_sid=call, date_created="2019-06-01T00:00:00Z"
    ).json()["sid"]
    in_conference = upload(
        client,
        settings,
        account,
        demo_wav,
        ConferenceSid=conference,
        date_created="2019-06-02T00:00:00Z",
    ).json()["sid"]
    d1, d2a, d2b, d3 = (sids[m] for m in moments)

    def listed(**filters: object) -> list[str]:
        return [r.sid for r in twilio.recordings.list(**filters)]

    assert listed(call_sid=call) == [in_call]
    assert listed(conference_sid=conference) == [in_conference]
    # The SDK sends datetimes and dates alike as YYYY-MM-DDTHH:MM:SSZ: instants, inclusive.
    assert listed(date_created_after=datetime(2020, 1, 2, tzinfo=UTC)) == [d3, d2b, d2a]
    assert listed(date_created_after=date(2020, 1, 2)) == [d3, d2b, d2a]
    assert listed(date_created_before=datetime(2020, 1, 2, tzinfo=UTC)) == [
        d2a,
        d1,
        in_conference,
        in_call,
    ]
    assert listed(date_created_before=date(2020, 1, 2)) == [d2a, d1, in_conference, in_call]
    assert listed(
        date_created_after=date(2020, 1, 1),
        date_created_before=datetime(2020, 1, 2, 11, tzinfo=UTC),
    ) == [d2a, d1]
    assert listed(date_created=datetime(2020, 1, 2, 12, tzinfo=UTC)) == [d2b]
    # A string passes through unchanged: the documented day form.
    assert listed(date_created="2020-01-02") == [d2b, d2a]
    assert listed(date_created_after=date(2020, 1, 2), page_size=1) == [d3, d2b, d2a]


def test_call_scoped_list_and_fetch(
    twilio: Client, client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call = new_sid("CA")
    expected = recordings_at(
        client,
        settings,
        account,
        demo_wav,
        ["2021-07-01T00:00:00Z", "2021-07-02T00:00:00Z"],
        CallSid=call,
    )
    upload(client, settings, account, demo_wav)
    assert [r.sid for r in twilio.calls(call).recordings.list()] == expected
    one = twilio.calls(call).recordings(expected[0]).fetch()
    assert one.sid == expected[0] and one.call_sid == call and one.track == "both"
    assert one.date_created == datetime(2021, 7, 2, tzinfo=UTC)
    with pytest.raises(TwilioRestException) as missing:
        twilio.calls(new_sid("CA")).recordings(expected[0]).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)
    assert twilio.calls(call).recordings(expected[1]).delete() is True
    assert [r.sid for r in twilio.calls(call).recordings.list()] == expected[:1]


def test_conference_scoped_list_fetch_and_delete(
    twilio: Client, client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    conference = new_sid("CF")
    expected = recordings_at(
        client,
        settings,
        account,
        demo_wav,
        ["2021-09-01T00:00:00Z", "2021-09-02T00:00:00Z", "2021-09-03T00:00:00Z"],
        ConferenceSid=conference,
        Source="Conference",
    )
    upload(client, settings, account, demo_wav, ConferenceSid=new_sid("CF"))
    recordings = twilio.conferences(conference).recordings
    assert [r.sid for r in recordings.list()] == expected
    assert [r.sid for r in recordings.list(page_size=1)] == expected
    assert [r.sid for r in recordings.stream(limit=2, page_size=1)] == expected[:2]
    after = recordings.list(date_created_after=date(2021, 9, 2))
    assert [r.sid for r in after] == expected[:2]
    on_day = recordings.list(date_created=date(2021, 9, 1))
    assert [r.sid for r in on_day] == expected[2:]
    one = recordings(expected[0]).fetch()
    assert one.sid == expected[0] and one.conference_sid == conference
    assert one.source == "Conference" and one.channels == 1 and one.status == "completed"
    assert one.date_created == datetime(2021, 9, 3, tzinfo=UTC)
    # No StartTime was given: the recording started when it was created.
    assert one.start_time == one.date_created
    assert one.uri == (
        f"/2010-04-01/Accounts/{account.sid}/Conferences/{conference}/Recordings/{expected[0]}.json"
    )
    with pytest.raises(TwilioRestException) as missing:
        twilio.conferences(new_sid("CF")).recordings(expected[0]).fetch()
    assert (missing.value.status, missing.value.code) == (404, 20404)
    assert recordings(expected[1]).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        recordings(expected[1]).fetch()
    assert gone.value.status == 404
    assert [r.sid for r in recordings.list()] == [expected[0], expected[2]]


def test_fetch_gives_every_field_its_type(
    server,
    twilio: Client,
    client: httpx.Client,
    settings: Settings,
    account: Account,
    demo_wav: bytes,  # type: ignore[no-untyped-def]
) -> None:
    call, conference = new_sid("CA"), new_sid("CF")
    sid = upload(
        client,
        settings,
        account,
        demo_wav,
        call_sid=call,
        date_created="2020-02-29T23:59:58Z",
        Source="StartConferenceRecordingAPI",
        StartTime="2020-02-29T23:59:57Z",
        ConferenceSid=conference,
    ).json()["sid"]
    r = twilio.recordings(sid).fetch()
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}"
    assert r.sid == sid and r.account_sid == account.sid and r.call_sid == call
    assert r.conference_sid == conference
    assert r.api_version == "2010-04-01"
    assert r.date_created == datetime(2020, 2, 29, 23, 59, 58, tzinfo=UTC)
    assert r.date_updated == datetime(2020, 2, 29, 23, 59, 58, tzinfo=UTC)
    assert r.start_time == datetime(2020, 2, 29, 23, 59, 57, tzinfo=UTC)
    assert r.duration == "3"
    assert r.price is None and r.price_unit is None
    assert r.status == "completed"
    assert r.channels == 1 and isinstance(r.channels, int)
    assert r.source == "StartConferenceRecordingAPI"
    assert r.error_code is None
    assert r.uri == path + ".json"
    assert r.encryption_details is None
    assert r.subresource_uris == {
        "add_on_results": path + "/AddOnResults.json",
        "transcriptions": path + "/Transcriptions.json",
    }
    assert r.media_url == server.base_url + path
    assert twilio.recordings(sid).transcriptions.list() == []
    assert twilio.recordings(sid).add_on_results.list() == []


def test_delete_then_fetch_and_include_soft_deleted(
    twilio: Client, client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    kept, sid = recordings_at(
        client, settings, account, demo_wav, ["2021-08-02T00:00:00Z", "2021-08-01T00:00:00Z"]
    )
    assert twilio.recordings(sid).delete() is True
    with pytest.raises(TwilioRestException) as gone:
        twilio.recordings(sid).fetch()
    assert (gone.value.status, gone.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as again:
        twilio.recordings(sid).delete()
    assert again.value.status == 404
    deleted = twilio.recordings(sid).fetch(include_soft_deleted=True)
    assert deleted.status == "deleted" and deleted.sid == sid
    assert [r.sid for r in twilio.recordings.list()] == [kept]
    assert [r.sid for r in twilio.recordings.list(include_soft_deleted=False)] == [kept]
    listed = twilio.recordings.list(include_soft_deleted=True, page_size=1)
    assert [(r.sid, r.status) for r in listed] == [(kept, "completed"), (sid, "deleted")]
    assert httpx.get(deleted.media_url).status_code == 404


def test_wrong_token_and_another_account(
    server,
    client: httpx.Client,
    settings: Settings,
    account: Account,
    other_account: Account,
    demo_wav: bytes,  # type: ignore[no-untyped-def]
) -> None:
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    theirs = upload(client, settings, other_account, demo_wav).json()["sid"]
    wrong = twilio_client(server.base_url, account, token="0" * 32)
    with pytest.raises(TwilioRestException) as denied:
        wrong.recordings(sid).fetch()
    assert (denied.value.status, denied.value.code) == (401, 20003)
    # A list answer other than 200 is a bare TwilioException in the SDK.
    with pytest.raises(TwilioException, match="401"):
        wrong.recordings.list()
    mine = twilio_client(server.base_url, account)
    with pytest.raises(TwilioRestException) as foreign:
        mine.recordings(theirs).fetch()
    assert (foreign.value.status, foreign.value.code) == (404, 20404)
    with pytest.raises(TwilioRestException) as forbidden:
        mine.api.v2010.accounts(other_account.sid).recordings(theirs).fetch()
    assert (forbidden.value.status, forbidden.value.code) == (403, 20403)


def test_media_url_serves_the_uploaded_bytes_and_an_mp3(
    twilio: Client,
    client: httpx.Client,
    settings: Settings,
    account: Account,
    demo_wav: bytes,
    tmp_path: Path,
) -> None:
    sid = upload(client, settings, account, demo_wav).json()["sid"]
    media_url = twilio.recordings(sid).fetch().media_url
    wav = httpx.get(media_url)
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/x-wav"
    assert wav.content == demo_wav
    mp3 = httpx.get(media_url + ".mp3", timeout=60)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert mp3.content[:3] == b"ID3" or mp3.content[0] == 0xFF
    path = tmp_path / "r.mp3"
    path.write_bytes(mp3.content)
    probe = subprocess.run(
        [settings.ffmpeg_path, "-v", "error", "-f", "mp3", "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and probe.stderr == ""
    decoded = subprocess.run(
        [settings.ffmpeg_path, "-i", str(path), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Audio: mp3" in decoded.stderr
