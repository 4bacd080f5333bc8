"""Security: constant-time credential checks, account isolation, SIDs validated before storage,
no header or XML injection, hostile ranges and oversized requests, no internals in errors.

Every test here is written so that it fails when the property it names is broken: the storage
and database probes count the bytes the service sends them, the injection tests read the raw
response head off the socket, and the XML bodies go through a strict XML 1.0 parser.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac as real_hmac
import json
import os
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
import httpx
import pytest

import service.accounts.auth
from db.accounts import Account as StoredAccount
from db.accounts import fetch_account, set_enforce_media_auth
from db.recordings import Recording, insert_recording, set_mp3_error
from devstack.demo import write_demo_wav
from devstack.dev import settings_env
from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.accounts.auth import Credentials, authenticate, verify
from service.errors import Unauthorized
from service.settings import Settings
from service.sids import new_sid
from tests.conftest import (
    INGEST_TOKEN,
    Account,
    ServerThread,
    make_settings,
    new_account,
)
from tests.faults import FaultProxy

RECORDINGS = str(Path(sys.executable).parent / "recordings")

# --------------------------------------------------------------------------------------------
# Helpers: raw HTTP/1.1 requests, uploads
# --------------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    head: bytes  # status line and header lines, as sent
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def raw_request(
    base_url: str,
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = 20.0,
    content_length: int | None = None,
) -> RawResponse | None:
    """One HTTP/1.1 request exactly as written (no client-side URL normalisation).

    None when the server closed the connection without answering.
    """
    parts = urlsplit(base_url)
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    lines.append("Connection: close")
    if body or content_length is not None:
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    received = bytearray()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    if not received:
        return None
    head, sep, rest = bytes(received).partition(b"\r\n\r\n")
    assert sep, f"incomplete response head: {bytes(received[:200])!r}"
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line.split(b" ")[1])
    parsed = []
    for line in header_lines:
        name, colon, value = line.decode("latin-1").partition(":")
        assert colon, f"not a header line: {line!r}"
        parsed.append((name, value.strip()))
    response = RawResponse(status, head, parsed, rest)
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        response.body = _dechunk(rest)
    return response


def upload(
    base_url: str,
    account: Account,
    body: bytes,
    *,
    call_sid: str | None = None,
    date_created: str | None = None,
) -> dict[str, Any]:
    params = {"CallSid": call_sid or new_sid("CA")}
    if date_created:
        params["DateCreated"] = date_created
    response = httpx.post(
        f"{base_url}/internal/Accounts/{account.sid}/Recordings.json",
        params=params,
        content=body,
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def insert_row(dsn: str, account_sid: str, **changes: Any) -> Recording:
    """A recording row without going through ingest (its object need not exist)."""

    async def go() -> Recording:
        conn = await asyncpg.connect(dsn)
        try:
            sid = new_sid("RE")
            moment = datetime(2012, 5, 6, 7, 8, 9, tzinfo=UTC)
            values: dict[str, Any] = {
                "sid": sid,
                "account_sid": account_sid,
                "call_sid": new_sid("CA"),
                "duration": 3,
                "date_created": moment,
                "date_updated": moment,
                "sample_rate": 8000,
                "channels": 1,
                "wav_key": f"{account_sid}/{sid}.wav",
                "wav_size": 44,
                "wav_etag": '"' + "0" * 40 + '"',
                "mp3_key": None,
                "mp3_size": None,
                "mp3_etag": None,
                "mp3_error": None,
            }
            mp3_error = changes.pop("mp3_error", None)
            values.update(changes)
            made = await insert_recording(conn, Recording(**values))  # type: ignore[arg-type]
            if mp3_error is not None:
                await set_mp3_error(conn, sid, mp3_error)
            return made
        finally:
            await conn.close()

    return asyncio.run(go())


def row_count(dsn: str, account_sid: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            count: int = await conn.fetchval(
                "SELECT count(*) FROM recordings WHERE account_sid = $1", account_sid
            )
            return count
        finally:
            await conn.close()

    return asyncio.run(go())


def set_media_auth(dsn: str, account_sid: str, enforce: bool) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            assert await set_enforce_media_auth(conn, account_sid, enforce)
        finally:
            await conn.close()

    asyncio.run(go())


def basic(account: Account) -> str:
    return "Basic " + base64.b64encode(f"{account.sid}:{account.token}".encode()).decode()


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


# --------------------------------------------------------------------------------------------
# 1. Constant-time credential checks
# --------------------------------------------------------------------------------------------


class CountingHmac:
    """Stands in for the ``hmac`` module inside service.accounts.auth, counting what verify() does."""

    def __init__(self) -> None:
        self.new_calls = 0
        self.compares: list[tuple[int, int]] = []

    def new(self, *args: Any, **kwargs: Any) -> Any:
        self.new_calls += 1
        return real_hmac.new(*args, **kwargs)

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        self.compares.append((len(a), len(b)))
        return real_hmac.compare_digest(a, b)


@pytest.fixture
def counting_hmac(monkeypatch: pytest.MonkeyPatch) -> CountingHmac:
    counter = CountingHmac()
    monkeypatch.setattr(service.accounts.auth, "hmac", counter)
    return counter


def test_verify_does_one_hmac_and_one_digest_compare_whoever_asks(
    counting_hmac: CountingHmac,
) -> None:
    salt = b"s" * 16
    known = StoredAccount(
        sid=new_sid("AC"),
        friendly_name="",
        token_salt=salt,
        token_hash=service.accounts.auth.hash_token("right-token", salt),
        enforce_media_auth=False,
        date_created=datetime.now(UTC),
    )
    counting_hmac.new_calls, counting_hmac.compares = 0, []  # hash_token above counted once
    cases = [
        ("unknown AccountSid", Credentials(new_sid("AC"), "some-token"), None, False),
        ("known AccountSid, wrong token", Credentials(known.sid, "wrong-token"), known, False),
        ("known AccountSid, empty token", Credentials(known.sid, ""), known, False),
        ("known AccountSid, 10 KB token", Credentials(known.sid, "x" * 10_000), known, False),
        ("unknown AccountSid, empty token", Credentials(new_sid("AC"), ""), None, False),
        ("known AccountSid, right token", Credentials(known.sid, "right-token"), known, True),
    ]
    for label, credentials, account, expected in cases:
        counting_hmac.new_calls, counting_hmac.compares = 0, []
        assert verify(credentials, account) is expected, label
        assert counting_hmac.new_calls == 1, f"{label}: {counting_hmac.new_calls} HMACs"
        # One comparison, always of two 32-byte digests: same work whatever was presented.
        assert counting_hmac.compares == [(32, 32)], f"{label}: {counting_hmac.compares}"


def test_authenticate_looks_up_and_compares_the_same_for_unknown_and_known_accounts(
    settings: Settings,
    account: Account,
    counting_hmac: CountingHmac,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lookups: list[str] = []

    async def counting_fetch(pool: Any, sid: str) -> Any:
        lookups.append(sid)
        return await fetch_account(pool, sid)

    monkeypatch.setattr(service.accounts.auth, "fetch_account", counting_fetch)

    def header(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async def attempt(pool: Any, user: str, password: str) -> tuple[str, int, list[Any], int]:
        counting_hmac.new_calls, counting_hmac.compares = 0, []
        lookups.clear()
        with pytest.raises(Unauthorized) as raised:
            await authenticate(pool, header(user, password), account.sid)
        return (
            raised.value.message,
            counting_hmac.new_calls,
            list(counting_hmac.compares),
            len(lookups),
        )

    async def go() -> None:
        pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
        try:
            known = await attempt(pool, account.sid, "wrong-token")
            unknown = await attempt(pool, new_sid("AC"), "wrong-token")
            assert known == unknown == ("Invalid credentials", 1, [(32, 32)], 1)
        finally:
            await pool.close()

    asyncio.run(go())


def _comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    # Date changes by the second and X-Request-Id is a fresh random id on every answer.
    headers = [
        (k.lower(), v)
        for k, v in response.headers.items()
        if k.lower() not in {"date", "x-request-id"}
    ]
    return response.status_code, headers, response.content


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", ""),
        ("GET", ".xml"),
        ("GET", ".json"),
        ("GET", ".csv"),
        ("HEAD", ""),
        ("GET", "?CallSid=CA" + "0" * 32),
        ("DELETE", "/RE" + "0" * 32),
        ("DELETE", "/RE" + "0" * 32 + ".json"),
    ],
)
def test_unknown_and_known_accounts_get_byte_identical_401s(
    client: httpx.Client, account: Account, method: str, path: str
) -> None:
    unknown_sid = new_sid("AC")
    unknown_base = f"/2008-08-01/Accounts/{unknown_sid}/Recordings"
    # Known account, its own path, a wrong token ...
    known = client.request(method, account.base + path, auth=(account.sid, "not-the-token"))
    # ... an unknown (well-formed) account on its own path ...
    unknown = client.request(method, unknown_base + path, auth=(unknown_sid, "not-the-token"))
    # ... and an unknown account's credentials on the known account's path.
    stranger = client.request(method, account.base + path, auth=(unknown_sid, "not-the-token"))
    assert known.status_code == 401
    assert _comparable(known) == _comparable(unknown) == _comparable(stranger)


# --------------------------------------------------------------------------------------------
# 2. Account isolation on every route
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tenants:
    a: Account
    b: Account
    a_sid: str
    a_call: str
    a_wav: bytes
    b_sid: str  # B's recording on A's call SID and A's day


A_DAY = "2011-03-04"


@pytest.fixture(scope="module")
def tenants(
    server: ServerThread,
    settings: Settings,
    demo_wav: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> Tenants:
    a = new_account(settings.database_url)
    b = new_account(settings.database_url)
    a_call = new_sid("CA")
    # Audio of its own (a well-formed PCM WAV, stored byte for byte), so its bytes are A's alone.
    a_wav = write_demo_wav(tmp_path_factory.mktemp("tenant-a") / "a.wav", 2.0, seed=7).read_bytes()
    made = upload(server.base_url, a, a_wav, call_sid=a_call, date_created=A_DAY + "T05:06:07Z")
    theirs = upload(
        server.base_url, b, demo_wav, call_sid=a_call, date_created=A_DAY + "T09:00:00Z"
    )
    return Tenants(a, b, made["sid"], a_call, a_wav, theirs["sid"])


@pytest.fixture(scope="module")
def scratch(settings: Settings) -> Account:
    """An account the tests that add rows write to, so the tenants' lists stay exact."""
    return new_account(settings.database_url)


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
    client: httpx.Client,
    server: ServerThread,
    settings: Settings,
    demo_wav: bytes,
    tenants: Tenants,
) -> None:
    private = new_account(settings.database_url)
    sid = upload(server.base_url, private, demo_wav)["sid"]
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


# --------------------------------------------------------------------------------------------
# 3. SIDs validated before any storage key is built
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probed:
    server: ServerThread
    s3: FaultProxy
    db: FaultProxy
    account: Account
    sid: str
    wav: bytes


@pytest.fixture(scope="module")
def probed(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, demo_wav: bytes
) -> Iterator[Probed]:
    """A service whose S3 and PostgreSQL traffic goes through counting proxies."""
    with (
        FaultProxy.for_url(s3.endpoint_url, record=True) as s3_proxy,
        FaultProxy.for_url(postgres.dsn, record=True) as db_proxy,
    ):
        watched = make_settings(
            postgres,
            s3,
            s3_endpoint_url=s3_proxy.rewrite(s3.endpoint_url),
            database_url=db_proxy.rewrite(postgres.dsn),
        )
        account = new_account(settings.database_url)
        with ServerThread(watched) as running:
            sid = upload(running.base_url, account, demo_wav)["sid"]
            yield Probed(running, s3_proxy, db_proxy, account, sid, demo_wav)


def test_the_probes_see_a_real_media_request(probed: Probed) -> None:
    s3_mark, db_mark = probed.s3.bytes_to_upstream, probed.db.bytes_to_upstream
    got = raw_request(probed.server.base_url, "GET", f"{probed.account.base}/{probed.sid}.wav")
    assert got is not None and got.status == 200 and got.body == probed.wav
    assert any(probed.sid in line for line in probed.s3.http_requests_since(s3_mark))
    assert probed.db.bytes_to_upstream > db_mark


def _odd_names(sid: str) -> list[str]:
    hexpart = sid[2:]
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(c, 16) % 10] for c in hexpart)
    fullwidth = "".join(chr(0xFF10 + int(c, 16) % 10) for c in hexpart)
    return [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2F",
        f"..%2F{sid}",
        f"..%2F..%2F..%2Frecordings-tests%2F{{account}}%2F{sid}.wav",
        f"{sid}%2F..%2F{sid}",
        "RE" + hexpart[:15] + "%2F" + hexpart[16:],
        "RE" + hexpart[:15] + "/" + hexpart[16:],
        "RE" + quote(arabic),
        "RE" + quote(fullwidth),
        "RE" + hexpart.upper(),
        "re" + hexpart,
        "Re" + hexpart,
        sid[:-1],  # 33 characters
        sid + "0",  # 35 characters
        sid + "00",
        sid + "%00",
        sid[:20] + "%00" + sid[21:],
        "%00" + sid,
        sid + "%0A",
        sid + "%0D%0A",
        sid[:20] + "%0A" + sid[21:],
        sid + "%20",
        "%20" + sid,
        sid + "%09",
        sid + ".wav%00.mp3",
        sid + "%00.wav",
        "RE" + hexpart[:31] + "%C0%AF",
        quote("RE" + hexpart[:31] + "\u0660"),
    ]


def _odd_sid_targets(probed: Probed) -> list[str]:
    account = probed.account.sid
    names = [n.replace("{account}", account) for n in _odd_names(probed.sid)]
    base = probed.account.base
    targets = []
    for name in names:
        targets += [f"{base}/{name}", f"{base}/{name}.wav", f"{base}/{name}.mp3"]
    targets.append(f"{base}/{names[0]}.json")
    # The account's half of the key is checked too.
    for odd in (account.upper(), account[:-1], account + "%00", account + "%0A", "..%2F" + account):
        targets += [
            f"/2008-08-01/Accounts/{odd}/Recordings/{probed.sid}",
            f"/2008-08-01/Accounts/{odd}/Recordings/{probed.sid}.mp3",
        ]
    return targets


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_odd_sids_are_404_and_touch_neither_storage_nor_database(
    probed: Probed, method: str
) -> None:
    for target in _odd_sid_targets(probed):
        s3_mark, db_mark = probed.s3.bytes_to_upstream, probed.db.bytes_to_upstream
        got = raw_request(probed.server.base_url, method, target)
        assert got is not None, target
        assert got.status == 404, (target, got.status, got.body[:200])
        assert probed.s3.bytes_to_upstream == s3_mark, (
            target,
            probed.s3.http_requests_since(s3_mark),
        )
        assert probed.db.bytes_to_upstream == db_mark, (target, probed.db.sent_since(db_mark)[:200])
        assert got.body[:4] != b"RIFF" and probed.wav[44:1044] not in got.body


def test_odd_sids_on_delete_are_refused_without_storage_requests(probed: Probed) -> None:
    auth = [("Authorization", basic(probed.account))]
    for target in _odd_sid_targets(probed):
        s3_mark = probed.s3.bytes_to_upstream
        got = raw_request(probed.server.base_url, "DELETE", target, auth)
        assert got is not None, target
        # 403 when the odd part is the path's AccountSid (the credentials are not for it).
        assert got.status in (403, 404), (target, got.status)
        assert probed.s3.bytes_to_upstream == s3_mark, (
            target,
            probed.s3.http_requests_since(s3_mark),
        )
    # Nothing was deleted.
    still = raw_request(probed.server.base_url, "GET", f"{probed.account.base}/{probed.sid}")
    assert still is not None and still.status == 200 and still.body == probed.wav


# --------------------------------------------------------------------------------------------
# 4. Header and markup injection
# --------------------------------------------------------------------------------------------

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
    auth = [("Authorization", basic(tenants.b))]
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
    auth = [("Authorization", basic(tenants.b))]
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


# --------------------------------------------------------------------------------------------
# 5. Hostile Range headers
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "range_header",
    [
        "bytes=" + ",".join(f"{i}-{i}" for i in range(1000)),
        "bytes=" + ",".join(f"{i}-" for i in range(1000)),
        "bytes=" + "1" * 8192 + "-",
        "bytes=0-" + "9" * 8192,
        "bytes=-" + "9" * 8192,
        "bytes=" + "," * 8192,
        "bytes=" + "0-0," * 2000 + "0-0",
    ],
    ids=[
        "1000-single-bytes",
        "1000-open",
        "8k-first",
        "8k-last",
        "8k-suffix",
        "8k-commas",
        "2001-same",
    ],
)
def test_hostile_ranges_get_the_whole_body(
    server: ServerThread, tenants: Tenants, range_header: str
) -> None:
    url = f"{server.base_url}{tenants.a.base}/{tenants.a_sid}.wav"
    with httpx.Client(timeout=httpx.Timeout(10.0)) as http:
        response = http.get(url, headers={"Range": range_header})
    assert response.status_code == 200
    assert response.content == tenants.a_wav
    assert response.headers["content-length"] == str(len(tenants.a_wav))
    assert "content-range" not in response.headers


# --------------------------------------------------------------------------------------------
# 6. Oversized requests
# --------------------------------------------------------------------------------------------


def _closed_or_4xx(got: RawResponse | None) -> None:
    """A 4xx (431, 414, 400 ... ) or a closed connection; never a 2xx, a 5xx or a hang."""
    if got is None:
        return  # the connection was closed without an answer: acceptable
    assert 400 <= got.status < 500, f"{got.status}: {got.body[:200]!r}"


@pytest.fixture(scope="module")
def served(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``recordings serve`` itself (uvloop, httptools): the server a deployment runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDINGS_")}
    env.update(settings_env(settings))
    env["RECORDINGS_TRANSCODE_ON_INGEST"] = "false"
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve") / "serve.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [RECORDINGS, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            assert proc.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, "recordings serve did not start"
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Cookie", "c=" + "x" * 100_000),
        ("Authorization", "Basic " + "QUFB" * 25_000),
        ("X-Padding", "p" * 100_000),
    ],
)
@pytest.mark.parametrize("route", ["instance", "list", "healthz"])
def test_huge_headers_are_refused(
    served: str, tenants: Tenants, name: str, value: str, route: str
) -> None:
    target = {
        "instance": f"{tenants.a.base}/{tenants.a_sid}.xml",
        "list": f"{tenants.a.base}.json",
        "healthz": "/healthz",
    }[route]
    got = raw_request(served, "GET", target, [(name, value)], timeout=15)
    _closed_or_4xx(got)


def test_a_64k_query_string_on_the_list_is_refused(served: str, tenants: Tenants) -> None:
    auth = [("Authorization", basic(tenants.a))]
    base = f"{tenants.a.base}.json"
    # The control: the same server answers an ordinary list.
    ordinary = raw_request(served, "GET", f"{base}?num=5", auth)
    assert ordinary is not None and ordinary.status == 200
    for query in (
        "x=" + "a" * 65536,
        "CallSid=" + "CA" * 32768,
        "DateCreated=" + "2" * 65536,
        "&".join(["num=5"] * 10923),
    ):
        got = raw_request(served, "GET", f"{base}?{query}", auth, timeout=15)
        _closed_or_4xx(got)


def test_ingest_beyond_the_upload_limit_is_413_with_no_row_and_no_spool_left(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, tmp_path: Path
) -> None:
    account = new_account(settings.database_url)
    limited = make_settings(postgres, s3, max_upload_bytes=100_000, tmp_dir=str(tmp_path))
    chunk = b"\x01" * 16384
    with ServerThread(limited) as running:
        port = running.port
        head = (
            f"POST /internal/Accounts/{account.sid}/Recordings.json?CallSid={new_sid('CA')} "
            "HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {INGEST_TOKEN}\r\nContent-Type: audio/x-wav\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        ).encode()
        answer = b""
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            try:
                sock.sendall(head)
                for _ in range(64):  # 1 MiB
                    sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sock.sendall(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the service may stop reading once it has said 413
            with contextlib.suppress(ConnectionResetError):
                while b"</TwilioResponse>" not in answer and b"}" not in answer:
                    data = sock.recv(65536)
                    if not data:
                        break
                    answer += data
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert row_count(settings.database_url, account.sid) == 0
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------------------------
# 7. Control characters never reach XML or JSON bodies raw
# --------------------------------------------------------------------------------------------

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
    row = insert_row(settings.database_url, scratch.sid, mp3_error=hostile)
    response = client.get(f"{scratch.base}/{row.sid}.mp3")
    assert response.status_code == 422, response.text
    message = rest_message(response.content)
    assert message.startswith("bad") and '<tag a="1"> & ]]>' in message
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]", message)
    # The rest of the row is still served well-formed.
    strict_xml(client.get(f"{scratch.base}/{row.sid}.xml").content)
    json.loads(client.get(f"{scratch.base}/{row.sid}.json").content)


# --------------------------------------------------------------------------------------------
# 8. Errors never show internals
# --------------------------------------------------------------------------------------------

LEAK_MARKERS = [
    "Traceback",
    "127.0.0.1",
    'File "',
    "asyncpg",
    "botocore",
    "aiobotocore",
    "psycopg",
    "SELECT",
    "INSERT INTO",
    "UPDATE recordings",
    "FROM recordings",
    "postgresql://",
    "/work/",
    "/tmp/",
    "/usr/",
    "site-packages",
    "recordings-tests",  # the bucket
    "ffmpeg version",
    "Errno",
]


def _secrets_of(settings: Settings) -> list[str]:
    values = [
        INGEST_TOKEN,
        settings.s3_access_key_id or "",
        settings.s3_secret_access_key or "",
        settings.database_url,
        urlsplit(settings.s3_endpoint_url or "").netloc,
        f":{urlsplit(settings.database_url).port}",
    ]
    return [v for v in values if v]


def assert_no_internals(response: httpx.Response | RawResponse, settings: Settings) -> None:
    if isinstance(response, RawResponse):
        status, body, headers = response.status, response.body, response.headers
    else:
        status, body = response.status_code, response.content
        headers = list(response.headers.items())
    text = body.decode("utf-8", "replace")
    head = "\n".join(f"{k}: {v}" for k, v in headers)
    for marker in [*LEAK_MARKERS, *_secrets_of(settings)]:
        assert marker not in text, f"{status} body shows {marker!r}: {text[:500]}"
        assert marker not in head, f"{status} headers show {marker!r}: {head}"


def test_error_bodies_show_no_internals(
    client: httpx.Client,
    server: ServerThread,
    settings: Settings,
    tenants: Tenants,
    scratch: Account,
    demo_wav: bytes,
) -> None:
    a = tenants.a
    missing = insert_row(settings.database_url, scratch.sid)  # its object was never stored
    bearer = {"Authorization": f"Bearer {INGEST_TOKEN}"}
    cases: list[tuple[int, httpx.Response | RawResponse | None]] = [
        (400, client.get(f"{a.base}?DateCreated=2009-13-45", auth=a.auth)),
        (400, client.get(f"{a.base}.json?CallSid=x'%20OR%201=1--", auth=a.auth)),
        (400, client.get(f"{a.base}?num=99999999999999999999", auth=a.auth)),
        (400, client.get(f"{a.base}?DateCreated=%ff", auth=a.auth)),
        (401, client.get(f"{a.base}.json", auth=(a.sid, "x"))),
        (403, client.get(f"{a.base}.json", auth=tenants.b.auth)),
        (404, client.get(f"{a.base}/RE{'0' * 32}.json")),
        (404, client.get(f"{a.base}/..%2F..%2Fetc%2Fpasswd")),
        (404, client.get(f"{a.base}.json?page=999999", auth=a.auth)),
        (404, client.get("/2008-08-01/nothing/here")),
        (405, client.put(f"{a.base}/{tenants.a_sid}", content=b"x")),
        (405, client.post(f"{a.base}.json", auth=a.auth)),
        (416, client.get(f"{a.base}/{tenants.a_sid}", headers={"Range": "bytes=999999999-"})),
        (412, client.get(f"{a.base}/{tenants.a_sid}", headers={"If-Match": '"nope"'})),
        (502, client.get(f"{scratch.base}/{missing.sid}.wav")),
        (
            400,
            client.post(f"/internal/Accounts/{a.sid}/Recordings", content=demo_wav, headers=bearer),
        ),
        (
            422,
            client.post(
                f"/internal/Accounts/{scratch.sid}/Recordings.json?CallSid={new_sid('CA')}",
                content=b"definitely not audio " * 500,
                headers=bearer,
            ),
        ),
        (
            413,
            raw_request(
                server.base_url,
                "POST",
                f"/internal/Accounts/{scratch.sid}/Recordings?CallSid={new_sid('CA')}",
                [("Authorization", f"Bearer {INGEST_TOKEN}")],
                b"RIFF",
                content_length=settings.max_upload_bytes + 1,
            ),
        ),
        (401, client.post(f"/internal/Accounts/{a.sid}/Recordings", content=b"x")),
    ]
    for expected, response in cases:
        assert response is not None
        status = response.status if isinstance(response, RawResponse) else response.status_code
        assert status == expected, (expected, status, response)
        assert_no_internals(response, settings)


def test_hostile_ingest_timestamps_are_400_not_500(
    client: httpx.Client, settings: Settings, scratch: Account, demo_wav: bytes
) -> None:
    # Valid ISO-8601 with offsets that push the instant past datetime's range once in UTC.
    for stamp in (
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "Fri, 31 Dec 9999 23:59:59 -0500",
        "%00",
        "2020-02-30T00:00:00Z",
    ):
        response = client.post(
            f"/internal/Accounts/{scratch.sid}/Recordings.json",
            params={"CallSid": new_sid("CA"), "DateCreated": stamp},
            content=demo_wav,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        )
        assert response.status_code == 400, (stamp, response.status_code, response.text[:300])
        assert json.loads(response.content)["status"] == 400
        assert_no_internals(response, settings)


def test_outage_503s_show_no_internals(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, demo_wav: bytes
) -> None:
    account = new_account(settings.database_url)
    with (
        FaultProxy.for_url(s3.endpoint_url, record=True) as s3_proxy,
        FaultProxy.for_url(postgres.dsn, record=True) as db_proxy,
    ):
        watched = make_settings(
            postgres,
            s3,
            s3_endpoint_url=s3_proxy.rewrite(s3.endpoint_url),
            database_url=db_proxy.rewrite(postgres.dsn),
            s3_timeout=3.0,
            database_timeout=3.0,
        )
        with (
            ServerThread(watched) as running,
            httpx.Client(base_url=running.base_url, timeout=60) as http,
        ):
            sid = upload(running.base_url, account, demo_wav)["sid"]
            s3_proxy.refuse()
            started = time.monotonic()
            for suffix in ("", ".wav"):
                response = http.get(f"{account.base}/{sid}{suffix}")
                assert response.status_code == 503, response.text
                assert "retry-after" in response.headers
                assert_no_internals(response, settings)
            s3_proxy.pass_through()
            db_proxy.refuse()
            for response in (
                http.get(f"{account.base}.json", auth=account.auth),
                http.get(f"{account.base}", auth=account.auth),
                http.get(f"{account.base}/{sid}.xml"),
                http.delete(f"{account.base}/{sid}", auth=account.auth),
            ):
                assert response.status_code == 503, response.text
                assert "retry-after" in response.headers
                assert_no_internals(response, settings)
            db_proxy.pass_through()
            assert time.monotonic() - started < 55
            # And it recovers by itself.
            deadline = time.monotonic() + 20
            while http.get(f"{account.base}/{sid}.xml").status_code != 200:
                assert time.monotonic() < deadline, "no recovery"
                time.sleep(0.2)
            assert hashlib.sha256(http.get(f"{account.base}/{sid}").content).digest() == (
                hashlib.sha256(demo_wav).digest()
            )
