"""Hostile input never reaches an answer raw: no header injection (read off the socket), no
markup in bodies, and control characters in queries or stored fields give well-formed XML 1.0
and JSON (parsed strictly)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import httpx
import pytest

from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import A_DAY, INGEST_TOKEN, Account, Tenants
from tests.support.rawhttp import RawResponse, raw_request
from tests.support.rows import insert_recordings, recording_row
from tests.support.stack import ServerThread


def strict_xml(body: bytes) -> ET.Element:
    """ElementTree (expat) rejects anything XML 1.0 forbids, control characters included."""
    return ET.fromstring(body)


def rest_message(body: bytes) -> str:
    root = strict_xml(body)
    assert root.tag == "TwilioResponse"
    message = root.find("./RestException/Message")
    assert message is not None and message.text
    return message.text


HEADER_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+: ?[\t\x20-\x7e\x80-\xff]*")


def assert_clean_head(response: RawResponse, *, forbidden_names: tuple[str, ...] = ()) -> None:
    """Every header line is one well-formed field; no injected field, no control characters."""
    lines = response.head.split(b"\r\n")
    assert re.fullmatch(rb"HTTP/1\.1 \d{3} [\x20-\x7e]*", lines[0]), lines[0]
    for line in lines[1:]:
        assert HEADER_LINE.fullmatch(line), f"malformed header line {line!r}"
    names = {name.lower() for name, _ in response.headers}
    for name in ("x-injected", "set-cookie", *forbidden_names):
        assert name not in names, f"injected header {name}: {response.head!r}"


# --- header and markup injection ---------------------------------------------------------------


HOSTILE_QUERIES = [
    "CallSid=%0D%0AX-Injected:%20yes",
    "CallSid=CA%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
    "CallSid=CA" + "0" * 32 + "%0D%0ASet-Cookie:%20a=b",
    "DateCreated=%0D%0ASet-Cookie:%20a=b",
    "DateCreated=%22%20onload=%22x%3C%3E",
    "DateCreated%3E%3D=%3Cscript%3E",
    "DateCreated%0D%0AX-Injected:%20yes=2020-01-01",
    "num=%0D%0AX-Injected:%201",
    "page=%3Cscript%3Ealert(1)%3C/script%3E",
    "PageSize=%22%3E%3C!--",
]


def _check_list_body(body: bytes, suffix: str) -> list[str]:
    """Parse a list or error body strictly; returns the URI-like strings it carries."""
    uris: list[str] = []
    if suffix == ".json":
        data = json.loads(body)
        uris = [v for k, v in data.items() if k.endswith("uri") and isinstance(v, str)]
    elif suffix == ".csv":
        assert b"<script" not in body
    else:
        root = strict_xml(body)
        for element in root.iter():
            uris += [v for k, v in element.attrib.items() if k.endswith("uri")]
        assert b"<script" not in body and b"<!--" not in body
    for uri in uris:
        assert not re.search(r'[\r\n"<>\s]', uri), uri
    return uris


@pytest.mark.parametrize("suffix", ["", ".json", ".csv"])
@pytest.mark.parametrize("query", HOSTILE_QUERIES)
def test_hostile_list_queries_inject_neither_headers_nor_markup(
    server: ServerThread, tenants: Tenants, suffix: str, query: str
) -> None:
    auth = [("Authorization", tenants.b.basic_auth)]
    got = raw_request(server.base_url, "GET", f"{tenants.b.base}{suffix}?{query}", auth)
    assert got is not None
    assert got.status == 400, (query, got.status, got.body[:300])
    assert_clean_head(got)
    if suffix == ".json":
        message = json.loads(got.body)["message"]
    else:  # errors on .csv paths are XML
        message = rest_message(got.body)
    assert "\r" not in message and "\n" not in message


@pytest.mark.parametrize("suffix", ["", ".json"])
def test_unknown_parameters_are_not_echoed_into_page_uris(
    server: ServerThread, tenants: Tenants, suffix: str
) -> None:
    auth = [("Authorization", tenants.b.basic_auth)]
    junk = "x=%22%3E%3Cscript%3Ealert(1)%3C/script%3E%0D%0AX-Injected:%20yes&y=%22&z=%3C"
    got = raw_request(
        server.base_url,
        "GET",
        f"{tenants.b.base}{suffix}?{junk}&CallSid={tenants.a_call}&DateCreated%3E={A_DAY}&num=1",
        auth,
    )
    assert got is not None and got.status == 200, got and got.body[:300]
    assert_clean_head(got)
    uris = _check_list_body(got.body, suffix)
    assert uris and any(f"CallSid={tenants.a_call}" in uri for uri in uris)


@pytest.mark.parametrize(
    "query",
    [
        "CallSid=CA" + "0" * 32 + "%0D%0AX-Injected:%20yes",
        "CallSid=%3Cscript%3E",
        "CallSid={call}&DateCreated=%0D%0AX-Injected:%20yes",
        "CallSid={call}&DateCreated=%22%3E%3Cscript%3E",
    ],
)
@pytest.mark.parametrize("suffix", ["", ".xml", ".json"])
def test_hostile_ingest_parameters_inject_nothing(
    server: ServerThread, scratch: Account, demo_wav: bytes, query: str, suffix: str
) -> None:
    target = f"/internal/Accounts/{scratch.sid}/Recordings{suffix}?" + query.format(
        call=new_sid("CA")
    )
    got = raw_request(
        server.base_url,
        "POST",
        target,
        [("Authorization", f"Bearer {INGEST_TOKEN}"), ("Content-Type", "audio/x-wav")],
        demo_wav,
    )
    assert got is not None
    assert got.status == 400, (query, got.status, got.body[:300])
    assert_clean_head(got)
    if suffix == ".json":
        assert "\n" not in json.loads(got.body)["message"]
    else:
        assert "\n" not in rest_message(got.body)


def test_echoed_headers_are_fixed_or_validated(
    server: ServerThread, tenants: Tenants, settings: Settings
) -> None:
    base = server.base_url
    a = tenants.a
    # Content-Disposition: built from the validated SID, whatever case the suffix had.
    for suffix, ext in ((".WaV", "wav"), ("", "wav"), (".wav", "wav")):
        got = raw_request(base, "GET", f"{a.base}/{tenants.a_sid}{suffix}")
        assert got is not None and got.status == 200
        assert_clean_head(got)
        assert got.header("content-disposition") == f'inline; filename="{tenants.a_sid}.{ext}"'
    # WWW-Authenticate: fixed, whatever the client sent.
    for value in ('Basic realm="x"<script>', "Basic " + "=" * 50, 'Digest username="<x>"'):
        got = raw_request(base, "GET", f"{a.base}?x=%0D%0A", [("Authorization", value)])
        assert got is not None and got.status == 401
        assert_clean_head(got)
        assert got.header("www-authenticate") == 'Basic realm="Recordings"'
    # Allow: route methods only.
    for method, target in (
        ("PUT", f"{a.base}/{tenants.a_sid}?x=%0D%0AX-Injected:%201"),
        ("POST", f"{a.base}?_method=%0D%0AX"),
        ("PATCH", f"{a.base}/{tenants.a_sid}.json"),
    ):
        got = raw_request(base, method, target, [("Authorization", "Basic eDp5")])
        assert got is not None and got.status == 405, (method, target, got and got.status)
        assert_clean_head(got)
        assert re.fullmatch(r"[A-Z]+(, [A-Z]+)*", got.header("allow") or ""), got.header("allow")
    # X-Request-Id (when the service tags answers): never the client's unsafe value.
    for offered in ('"><script>', "a b", "x" * 200, "ok\tid"):
        got = raw_request(base, "GET", "/healthz", [("X-Request-Id", offered)])
        assert got is not None and got.status == 200
        assert_clean_head(got)
        assert got.header("x-request-id") != offered
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", got.header("x-request-id") or "x")
    # A redirect's Location (trailing slash): no header break-out from the Host header.
    got = raw_request(base, "GET", f"{a.base}/", [("Authorization", "Basic eDp5")])
    assert got is not None
    assert_clean_head(got)
    if got.status in (301, 302, 307, 308):
        location = got.header("location") or ""
        assert not re.search(r'[\s"<>]', location), location


# --- control characters -----------------------------------------------------------------------


CONTROL_QUERIES = [
    "DateCreated=%01%02",
    "CallSid=%0B",
    "CallSid=CA%0C%1B",
    "DateCreated%3E%3D=%7F%00",
    "num=%1B",
    "page=%0C",
    "Page=%08",
    "DateCreated%01=2020-01-01",
    "CallSid=%EF%BF%BE",  # U+FFFE, not an XML character
    "CallSid=%C2%85",  # NEL
]


@pytest.mark.parametrize("suffix", ["", ".xml", ".json", ".csv"])
@pytest.mark.parametrize("query", CONTROL_QUERIES)
def test_control_characters_in_list_queries_give_well_formed_errors(
    client: httpx.Client, tenants: Tenants, suffix: str, query: str
) -> None:
    response = client.get(f"{tenants.b.base}{suffix}?{query}", auth=tenants.b.auth)
    assert response.status_code == 400, (query, response.text)
    if suffix == ".json":
        assert json.loads(response.content)["status"] == 400  # strict: no raw control chars
    else:
        rest_message(response.content)


@pytest.mark.parametrize("query", ["DateCreated=%01%02", "CallSid=%0B", "DateCreated=%0C2020"])
@pytest.mark.parametrize("suffix", ["", ".json"])
def test_control_characters_in_ingest_parameters_give_well_formed_errors(
    client: httpx.Client, scratch: Account, demo_wav: bytes, query: str, suffix: str
) -> None:
    if not query.startswith("CallSid"):
        query += f"&CallSid={new_sid('CA')}"
    response = client.post(
        f"/internal/Accounts/{scratch.sid}/Recordings{suffix}?{query}",
        content=demo_wav,
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    )
    assert response.status_code == 400, response.text
    if suffix == ".json":
        json.loads(response.content)
    else:
        rest_message(response.content)


def test_a_stored_message_with_control_characters_is_stripped_from_xml(
    client: httpx.Client, settings: Settings, scratch: Account
) -> None:
    # mp3_error is the one free-text column the API echoes (as the .mp3 RestException).
    hostile = 'bad\x01\x02\x08\x0b\x0c\x1b\x7f <tag a="1"> & ]]> \ufffe\uffff end'
    (row,) = insert_recordings(
        settings.database_url, [recording_row(scratch.sid, settings, mp3_error=hostile)]
    )
    response = client.get(f"{scratch.base}/{row.sid}.mp3")
    assert response.status_code == 422, response.text
    message = rest_message(response.content)
    assert message.startswith("bad") and '<tag a="1"> & ]]>' in message
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", message)
    # The rest of the row is still served well-formed.
    strict_xml(client.get(f"{scratch.base}/{row.sid}.xml").content)
    json.loads(client.get(f"{scratch.base}/{row.sid}.json").content)
