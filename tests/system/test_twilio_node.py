"""twilio-node, unmodified and fresh from the npm registry, against a running service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from service.sids import new_sid
from tests.support.api2010 import upload
from tests.support.clients import Account
from tests.support.node import install_twilio_node, run_node

SCRIPT = Path(__file__).with_name("twilio_node_script.js")


@pytest.fixture(scope="module")
def twilio_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose node_modules holds the registry's current twilio package."""
    return install_twilio_node(tmp_path_factory.mktemp("twilio-node"))


def test_twilio_node_lists_pages_filters_fetches_and_deletes(
    twilio_node: Path,
    server,  # type: ignore[no-untyped-def]
    client: httpx.Client,
    settings: Settings,
    account: Account,
    other_account: Account,
    demo_wav: bytes,
) -> None:
    call, conference = new_sid("CA"), new_sid("CF")
    moments = {
        "d1": "2020-01-01T10:00:00Z",
        "d2a": "2020-01-02T00:00:00Z",
        "d2b": "2020-01-02T12:00:00Z",
        "d3": "2020-01-03T00:00:00Z",
        "c1": "2019-05-01T00:00:00Z",
        "c2": "2019-05-02T00:00:00Z",
        "x": "2019-04-01T00:00:00Z",
    }
    sid = {}
    for name, moment in moments.items():
        extra: dict[str, str] = {}
        if name.startswith("c"):
            extra["CallSid"] = call
        if name == "x":
            extra = {
                "ConferenceSid": conference,
                "Source": "Conference",
                "StartTime": "2019-03-31T23:59:00Z",
            }
        sid[name] = upload(
            client, settings, account, demo_wav, date_created=moment, **extra
        ).json()["sid"]
    newest_first = [
        sid[n] for n, _ in sorted(moments.items(), key=lambda item: item[1], reverse=True)
    ]
    foreign = upload(client, settings, other_account, demo_wav).json()["sid"]
    # A conference of the other account: its list is left out of this account's listings.
    room = new_sid("CF")
    older, newer = (
        upload(
            client,
            settings,
            other_account,
            demo_wav,
            date_created=moment,
            ConferenceSid=room,
            Source="Conference",
        ).json()["sid"]
        for moment in ("2018-06-01T00:00:00Z", "2018-06-02T00:00:00Z")
    )
    d1, d2a, d2b, d3, c1, c2, x = (sid[n] for n in ("d1", "d2a", "d2b", "d3", "c1", "c2", "x"))

    out = run_node(
        twilio_node,
        SCRIPT,
        {
            "baseUrl": server.base_url,
            "accountSid": account.sid,
            "authToken": account.token,
            "callSid": call,
            "conferenceSid": conference,
            "fetchSid": c2,
            "deleteSid": d1,
            "foreignSid": foreign,
            "otherAccountSid": other_account.sid,
            "conference": {
                "accountSid": other_account.sid,
                "authToken": other_account.token,
                "conferenceSid": room,
                "otherConferenceSid": new_sid("CF"),
                "fetchSid": newer,
                "after": "2018-06-02T00:00:00Z",
            },
        },
    )
    assert out["listAll"] == newest_first
    assert out["listPaged"] == newest_first
    assert out["listLimit"] == newest_first[:5]
    assert out["each"] == newest_first
    assert out["pages"] == [newest_first[0:3], newest_first[3:6], newest_first[6:]]
    assert out["previous"] == newest_first[0:3]
    assert out["filters"] == {
        "callSid": [c2, c1],
        "conferenceSid": [x],
        "after": [d3, d2b, d2a],
        "before": [d2a, d1, c2, c1, x],
        "range": [d2b, d2a],
        "on": [d2b],
    }
    assert out["callList"] == [c2, c1]
    assert out["callFetch"] == {"sid": c2, "track": "both", "callSid": call}
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings/{c2}"
    assert out["fetch"] == {
        "accountSid": account.sid,
        "apiVersion": "2010-04-01",
        "callSid": call,
        "conferenceSid": None,
        "dateCreated": "2019-05-02T00:00:00.000Z",
        "dateUpdated": "2019-05-02T00:00:00.000Z",
        # No StartTime was given: the recording started when it was created.
        "startTime": "2019-05-02T00:00:00.000Z",
        "duration": "3",
        "sid": c2,
        "price": None,
        "priceUnit": None,
        "status": "completed",
        "channels": 1,
        "source": "RecordVerb",
        "errorCode": None,
        "uri": path + ".json",
        "encryptionDetails": None,
        "subresourceUris": {
            "add_on_results": path + "/AddOnResults.json",
            "transcriptions": path + "/Transcriptions.json",
        },
        "mediaUrl": server.base_url + path,
    }
    assert out["removed"] is True
    assert out["fetchAfterDelete"] == {"status": 404, "code": 20404}
    assert out["removeAgain"] == {"status": 404, "code": 20404}
    assert out["softFetch"] == {"sid": d1, "status": "deleted"}
    assert [s for s, status in out["softList"] if status == "deleted"] == [d1]
    assert [s for s, _ in out["softList"]] == newest_first
    assert out["listAfterDelete"] == [s for s in newest_first if s != d1]
    assert out["wrongToken"] == {"status": 401, "code": 20003}
    assert out["wrongTokenList"]["status"] == 401
    assert out["foreign"] == {"status": 404, "code": 20404}
    assert out["otherAccount"] == {"status": 403, "code": 20403}
    assert out["badPageSize"] == {"status": 400, "code": 20001}
    conference = out["conference"]
    assert conference["list"] == [newer, older]
    assert conference["paged"] == [newer, older]
    assert conference["after"] == [newer]
    assert conference["fetch"] == {
        "sid": newer,
        "conferenceSid": room,
        "source": "Conference",
        "channels": 1,
        "uri": f"/2010-04-01/Accounts/{other_account.sid}/Conferences/{room}/Recordings/{newer}.json",
        "dateCreated": "2018-06-02T00:00:00.000Z",
        "startTime": "2018-06-02T00:00:00.000Z",
    }
    assert conference["elsewhere"] == {"status": 404, "code": 20404}
    assert conference["removed"] is True
    assert conference["fetchAfterDelete"] == {"status": 404, "code": 20404}
    assert conference["listAfterDelete"] == [older]
    # The media behind the media_url node read: the uploaded bytes, and an MP3 beside them.
    media = httpx.get(out["fetch"]["mediaUrl"])
    assert media.status_code == 200 and media.content == demo_wav
    mp3 = httpx.get(out["fetch"]["mediaUrl"] + ".mp3", timeout=60)
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    x_fetched = client.get(
        f"/2010-04-01/Accounts/{account.sid}/Recordings/{x}.json", auth=account.auth
    ).json()
    assert (
        x_fetched["source"] == "Conference"
        and x_fetched["start_time"] == "Sun, 31 Mar 2019 23:59:00 +0000"
    )
