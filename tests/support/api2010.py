"""What tests of the 2010-04-01 face share: its shapes, its paths, its error check, uploads."""

from __future__ import annotations

from typing import Any

import httpx

from service.settings import Settings
from tests.support import clients
from tests.support.clients import Account

ERROR_KEYS = {"code", "message", "more_info", "status"}
ENVELOPE_KEYS = {
    "recordings",
    "end",
    "first_page_uri",
    "next_page_uri",
    "page",
    "page_size",
    "previous_page_uri",
    "start",
    "uri",
}
RECORDING_KEYS = {
    "account_sid",
    "api_version",
    "call_sid",
    "conference_sid",
    "date_created",
    "date_updated",
    "start_time",
    "duration",
    "sid",
    "price",
    "price_unit",
    "status",
    "channels",
    "source",
    "error_code",
    "uri",
    "encryption_details",
    "subresource_uris",
    "media_url",
}


def base2010(account: Account) -> str:
    return f"/2010-04-01/Accounts/{account.sid}"


def base2008(account: Account) -> str:
    return account.base


def upload(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    body: bytes,
    *,
    expect: int | None = 201,
    call_sid: str | None = None,
    date_created: Any = None,
    **query: str,
) -> httpx.Response:
    """Upload through the ingest endpoint; ``query`` are further parameters (Source, ...)."""
    assert settings.ingest_token == clients.INGEST_TOKEN
    return clients.upload(
        client,
        account,
        body,
        call_sid=call_sid,
        date_created=date_created,
        expect=expect,
        query=query,
    )


def assert_json_error(response: httpx.Response, status: int, code: int | None = None) -> dict:
    """A 2010 error: exactly Twilio's four keys, the status, a code, nothing leaked."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == ERROR_KEYS, body
    assert body["status"] == status
    assert isinstance(body["code"], int)
    if code is not None:
        assert body["code"] == code
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{body['code']}"
    text = response.text.lower()
    for leak in ("traceback", "select ", "asyncpg", "postgres", "sqlstate", 'file "'):
        assert leak not in text, response.text
    return body
