"""Account isolation on every route: another account's recordings are never found, listed,
served or deleted, whoever asks and however the path is spelled."""

from __future__ import annotations

import httpx
import pytest

from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import (
    A_DAY,
    Tenants,
    new_account,
    set_media_auth,
    uploaded_sid,
)


def _assert_reveals_nothing_of_a(response: httpx.Response, tenants: Tenants) -> None:
    body = response.content
    assert tenants.a_sid.encode() not in body
    assert tenants.a_wav[44:1044] not in body
    assert b"RIFF" not in body[:4]
    for name in ("etag", "content-disposition", "content-range", "last-modified"):
        assert name not in response.headers, f"{name}: {response.headers.get(name)}"
    assert not response.headers.get("content-type", "").startswith("audio/")


@pytest.mark.parametrize("suffix", ["", ".wav", ".mp3", ".xml", ".json", ".WAV", ".Mp3"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("who", ["nobody", "b", "a"])
def test_another_accounts_recording_is_404_on_every_instance_path(
    client: httpx.Client, tenants: Tenants, suffix: str, method: str, who: str
) -> None:
    auth = {"nobody": None, "b": tenants.b.auth, "a": tenants.a.auth}[who]
    for base in (
        tenants.b.base,
        f"/2008-08-01/Account/{tenants.b.sid}/Recordings",  # the seed's singular form
    ):
        response = client.request(method, f"{base}/{tenants.a_sid}{suffix}", auth=auth)
        assert response.status_code == 404, (base, response.status_code)
        _assert_reveals_nothing_of_a(response, tenants)
    # The control: the same request on A's own path finds it.
    own = client.request(method, f"{tenants.a.base}/{tenants.a_sid}.xml")
    assert own.status_code == 200


def test_media_auth_accounts_refuse_other_accounts_credentials(
    client: httpx.Client, settings: Settings, demo_wav: bytes, tenants: Tenants
) -> None:
    private = new_account(settings.database_url)
    sid = uploaded_sid(client, private, demo_wav)
    set_media_auth(settings.database_url, private.sid, True)
    for suffix in ("", ".wav", ".mp3", ".xml", ".json"):
        url = f"{private.base}/{sid}{suffix}"
        for auth, status in [
            (None, 401),
            (tenants.b.auth, 403),  # valid credentials, another account
            ((private.sid, tenants.b.token), 401),  # another account's token
            ((tenants.b.sid, private.token), 401),  # the right token under another SID
            ((new_sid("AC"), private.token), 401),
        ]:
            for method in ("GET", "HEAD"):
                response = client.request(method, url, auth=auth)
                assert response.status_code == status, (suffix, auth, method)
                assert sid.encode() not in response.content
                assert demo_wav[44:1044] not in response.content
                assert "etag" not in response.headers
        assert client.get(url, auth=private.auth).status_code == 200


def test_delete_of_another_accounts_recording_is_refused_and_changes_nothing(
    client: httpx.Client, tenants: Tenants
) -> None:
    a, b, sid = tenants.a, tenants.b, tenants.a_sid
    attempts = [
        # (path, credentials, status)
        (f"{b.base}/{sid}", b.auth, 404),  # B's own path, A's SID: not B's recording
        (f"{b.base}/{sid}.json", b.auth, 404),
        (f"{b.base}/{sid}", a.auth, 403),  # A's credentials are not B's
        (f"{a.base}/{sid}", b.auth, 403),  # B's credentials on A's path
        (f"{a.base}/{sid}", (a.sid, b.token), 401),
        (f"{a.base}/{sid}", (b.sid, a.token), 401),
        (f"{a.base}/{sid}", None, 401),
        (f"/2008-08-01/Account/{b.sid}/Recordings/{sid}", b.auth, 404),
    ]
    for path, auth, status in attempts:
        response = client.delete(path, auth=auth)
        assert response.status_code == status, (path, auth, response.text)
        _assert_reveals_nothing_of_a(response, tenants)
    # The old API's override, on B's path with B's credentials.
    override = client.post(f"{b.base}/{sid}", params={"_method": "DELETE"}, auth=b.auth)
    assert override.status_code == 404
    # A's recording is still whole.
    assert client.get(f"{a.base}/{sid}").content == tenants.a_wav


LIST_QUERIES = [
    "",
    "num=1000",
    "page=0&num=1",
    "CallSid={a_call}",
    f"DateCreated={A_DAY}",
    f"DateCreated>={A_DAY}",
    f"DateCreated<={A_DAY}",
    f"DateCreated%3E%3D{A_DAY}&DateCreated%3C%3D{A_DAY}",
    f"CallSid={{a_call}}&DateCreated={A_DAY}&num=5",
]


@pytest.mark.parametrize("suffix", ["", ".xml", ".json", ".csv"])
@pytest.mark.parametrize("query", LIST_QUERIES)
def test_a_list_never_holds_another_accounts_recordings(
    client: httpx.Client, tenants: Tenants, suffix: str, query: str
) -> None:
    q = query.format(a_call=tenants.a_call)
    response = client.get(f"{tenants.b.base}{suffix}?{q}", auth=tenants.b.auth)
    assert response.status_code == 200, response.text
    assert tenants.a_sid.encode() not in response.content
    assert tenants.a.sid.encode() not in response.content
    if suffix == ".json":
        body = response.json()
        assert [r["sid"] for r in body["recordings"]] == [tenants.b_sid][: len(body["recordings"])]
        assert body["total"] == 1  # B's one recording, on A's call and A's day
    # A's list with B's credentials, and B's list with A's: 403, nothing of either.
    for base, auth in ((tenants.a.base, tenants.b.auth), (tenants.b.base, tenants.a.auth)):
        refused = client.get(f"{base}{suffix}?{q}", auth=auth)
        assert refused.status_code == 403
        assert tenants.a_sid.encode() not in refused.content
        assert tenants.b_sid.encode() not in refused.content
