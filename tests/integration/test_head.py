"""HEAD of every GET route answers like its GET: the app's routes are enumerated, each GET path
filled with a real recording's identifiers, and both methods sent to a running server."""

from __future__ import annotations

import re

import httpx
import pytest

from service.app import create_app
from service.http.routes import routes_in_order
from service.sids import new_sid
from tests.support.clients import Account, upload

# Headers that may differ between two answers to the same request.
VOLATILE = {"date", "x-request-id", "server-timing", "set-cookie"}


def get_paths() -> list[str]:
    """Every GET route's path template, in the router's order."""
    app = create_app()
    return [
        route.path
        for route in routes_in_order(app.router.routes)
        if "GET" in (getattr(route, "methods", None) or ())
    ]


def fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def variants(template: str, account: Account, made: dict[str, str]) -> list[str]:
    """Concrete paths for ``template``: each format its ``{name}`` or ``{suffix}`` takes."""
    sid = made["sid"]
    base = {
        "account_sid": account.sid,
        "sid": sid,
        "call_sid": made["call_sid"],
        "conference_sid": made["conference_sid"],
        "name": "pages.css",
    }
    if template.startswith("/pages/static/"):
        return [fill(template, base)]
    names = [sid, f"{sid}.json", f"{sid}.xml", f"{sid}.mp3", "RE" + "0" * 32 + ".json"]
    if "{name}" in template:
        return [fill(template, {**base, "name": name}) for name in names]
    if "{suffix}" in template:
        return [fill(template, {**base, "suffix": s}) for s in (".json", ".xml", ".csv")]
    return [fill(template, base)]


def test_every_get_route_is_enumerated() -> None:
    paths = get_paths()
    assert "/2010-04-01/Accounts/{account_sid}/Recordings/{sid}.json" in paths
    assert len(paths) >= 20


@pytest.mark.parametrize("template", get_paths())
def test_head_answers_like_get(
    template: str, client: httpx.Client, account: Account, demo_wav: bytes
) -> None:
    # A conference's recording, so that the conference routes find one too.
    conference_sid = new_sid("CF")
    made = {
        **upload(client, account, demo_wav, query={"ConferenceSid": conference_sid}).json(),
        "conference_sid": conference_sid,
    }
    for path in variants(template, account, made):
        got = client.get(path, auth=account.auth)
        head = client.head(path, auth=account.auth)
        assert head.status_code == got.status_code, (path, got.text[:300])
        assert head.content == b"", path
        for name in ("content-type", "content-length", "etag", "last-modified", "allow"):
            if path == "/metrics" and name == "content-length":
                continue  # the counters moved between the two requests
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        both = set(got.headers) - VOLATILE
        assert both <= set(head.headers) | {"content-encoding", "transfer-encoding"}, path
