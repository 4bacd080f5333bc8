"""Metadata GETs skip FastAPI's routing and dependency resolution, and are still observed and
answered exactly like any other request, errors included."""

from __future__ import annotations

from typing import Any

import fastapi.routing
import httpx
import pytest

from tests.integration.test_observability import samples, value
from tests.support.clients import Account, Ingest


class Resolutions:
    """Counts FastAPI's dependency resolutions (one per request the router handles)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = fastapi.routing.solve_dependencies

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await real(*args, **kwargs)

        monkeypatch.setattr(fastapi.routing, "solve_dependencies", counting)


@pytest.fixture
def resolutions(monkeypatch: pytest.MonkeyPatch) -> Resolutions:
    return Resolutions(monkeypatch)


def _v2010(account: Account) -> str:
    return f"/2010-04-01/Accounts/{account.sid}"


def test_metadata_gets_of_both_faces_are_served_without_dependency_resolution(
    client: httpx.Client, account: Account, ingest: Ingest, resolutions: Resolutions
) -> None:
    made = ingest(account, call_sid="CA" + "ab" * 16).json()
    sid = made["sid"]
    paths = [
        (f"{account.base}/{sid}.xml", None),
        (f"{account.base}/{sid}.json", None),
        (f"{_v2010(account)}/Recordings/{sid}.json", account.auth),
        (f"{_v2010(account)}/Calls/{made['call_sid']}/Recordings/{sid}.json", account.auth),
    ]
    before = resolutions.count
    for path, auth in paths:
        response = client.get(path, auth=auth)
        assert response.status_code == 200, (path, response.text)
        assert sid in response.text
        assert response.headers["x-request-id"]
    assert resolutions.count == before
    # The same counter moves for a request the router handles: it can see a resolution.
    assert client.get(account.base, auth=account.auth).status_code == 200
    assert resolutions.count == before + 1


def test_fast_path_requests_are_counted_under_their_route(
    client: httpx.Client, account: Account, ingest: Ingest
) -> None:
    sid = ingest(account).json()["sid"]
    route = "/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.json"
    before = samples(client)
    for _ in range(3):
        client.get(f"{_v2010(account)}/Recordings/{sid}.json", auth=account.auth)
    client.get(f"{_v2010(account)}/Recordings/{sid}.json", auth=("AC" + "0" * 32, "nope"))
    after = samples(client)

    def moved(status: str) -> float:
        labels = {"method": "GET", "route": route, "status": status}
        return value(after, "recordings_http_requests_total", **labels) - value(
            before, "recordings_http_requests_total", **labels
        )

    assert moved("200") == 3
    assert moved("401") == 1


@pytest.mark.parametrize(
    ("path", "auth", "status", "shape"),
    [
        # 2008: a RestException in XML, or JSON for a .json path; no credentials needed.
        ("{v2008}/RE{zeros}.xml", None, 404, "xml"),
        ("{v2008}/RE{zeros}.json", None, 404, "json2008"),
        ("{v2008}/nonsense.xml", None, 404, "xml"),
        # 2010: Twilio's JSON error, credentials first.
        ("{v2010}/Recordings/RE{zeros}.json", "good", 404, "json2010"),
        ("{v2010}/Recordings/RE{zeros}.json", None, 401, "json2010"),
        ("{v2010}/Recordings/RE{zeros}.json", "bad", 401, "json2010"),
        ("{other2010}/Recordings/RE{zeros}.json", "good", 403, "json2010"),
    ],
)
def test_fast_path_errors_are_each_faces_own(
    client: httpx.Client,
    account: Account,
    other_account: Account,
    path: str,
    auth: str | None,
    status: int,
    shape: str,
) -> None:
    url = path.format(
        v2008=account.base,
        v2010=_v2010(account),
        other2010=_v2010(other_account),
        zeros="0" * 32,
    )
    credentials = {None: None, "good": account.auth, "bad": (account.sid, "x" * 32)}[auth]
    response = client.get(url, auth=credentials)
    assert response.status_code == status
    assert response.headers["x-request-id"]
    if shape == "xml":
        assert response.headers["content-type"].startswith("application/xml")
        assert b"<RestException><Status>404</Status>" in response.content
    elif shape == "json2008":
        assert response.json() == {"status": 404, "message": response.json()["message"]}
    else:
        body = response.json()
        assert set(body) == {"code", "message", "more_info", "status"}
        assert body["status"] == status
