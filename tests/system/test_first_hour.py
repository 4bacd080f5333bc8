"""What a new user meets in the first hour: the front page, the docs, clear ingest refusals."""

from __future__ import annotations

import re

import httpx

from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account


def test_front_page_and_docs_are_served_with_nothing_from_elsewhere(client: httpx.Client) -> None:
    for path in ("/", "/docs"):
        page = client.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        # Nothing to fetch from another host: no absolute URL in any src or href.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text)
    docs = client.get("/docs").text
    assert "/2008-08-01/Accounts/{account_sid}/Recordings" in docs
    assert client.get("/openapi.json").status_code == 200


def test_ingest_refusals_say_what_to_do(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    url = f"/internal/Accounts/{account.sid}/Recordings.json"
    params = {"CallSid": new_sid("CA")}
    wrong = client.post(
        url, params=params, content=demo_wav, headers={"Authorization": "Bearer no"}
    )
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer ")
    assert wrong.json()["status"] == 401

    token = {"Authorization": f"Bearer {settings.ingest_token}"}
    form = client.post(url, params=params, files={"file": ("a.wav", demo_wav)}, headers=token)
    assert form.status_code == 415, form.text
    assert "--data-binary" in form.json()["message"]

    # curl --data-binary labels raw bytes as a urlencoded form: that stays accepted.
    raw = client.post(
        url,
        params=params,
        content=demo_wav,
        headers={**token, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code == 201, raw.text
