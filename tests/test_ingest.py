"""The ingest endpoint: token, validation, measurement, and no row without a durable object."""

from __future__ import annotations

import asyncio
import socket
import subprocess

import asyncpg
import httpx
import pytest

from service.settings import Settings
from service.sids import new_sid
from tests.conftest import INGEST_TOKEN, Account, Ingest


def row_count(settings: Settings, account_sid: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(settings.database_url)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM recordings WHERE account_sid = $1", account_sid
                )
            )
        finally:
            await conn.close()

    return asyncio.run(go())


def test_ingest_answers_201_with_the_representation(
    client: httpx.Client, account: Account, ingest: Ingest
) -> None:
    call = new_sid("CA")
    response = ingest(account, call_sid=call, date_created="2020-02-29T23:59:59+01:00")
    body = response.json()
    assert body["account_sid"] == account.sid and body["call_sid"] == call
    assert body["duration"] == "3"
    assert body["date_created"] == "Sat, 29 Feb 2020 22:59:59 +0000"
    xml = ingest(account, suffix=".xml")
    assert xml.headers["content-type"].startswith("application/xml")
    assert b"<Recording><Sid>RE" in xml.content


def test_ingest_needs_the_token(client: httpx.Client, account: Account, demo_wav: bytes) -> None:
    url = f"/internal/Accounts/{account.sid}/Recordings?CallSid={new_sid('CA')}"
    assert client.post(url, content=demo_wav).status_code == 401
    assert (
        client.post(url, content=demo_wav, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
    assert client.post(url, content=demo_wav, auth=account.auth).status_code == 401


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"CallSid": "CA1"}, 400),
        ({"CallSid": new_sid("CA"), "DateCreated": "soon"}, 400),
    ],
)
def test_ingest_validates_its_parameters(
    client: httpx.Client, account: Account, demo_wav: bytes, params: dict[str, str], status: int
) -> None:
    response = client.post(
        f"/internal/Accounts/{account.sid}/Recordings",
        params=params,
        content=demo_wav,
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    )
    assert response.status_code == status
    assert b"<RestException>" in response.content


def test_unknown_account_is_404(client: httpx.Client, demo_wav: bytes) -> None:
    response = client.post(
        f"/internal/Accounts/AC{'0' * 32}/Recordings",
        params={"CallSid": new_sid("CA")},
        content=demo_wav,
        headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
    )
    assert response.status_code == 404


@pytest.mark.parametrize("body", [b"", b"not audio at all" * 100, b"RIFF\x00\x00\x00\x00WAVE"])
def test_bad_audio_is_rejected_without_a_row(
    settings: Settings, account: Account, ingest: Ingest, body: bytes
) -> None:
    response = ingest(account, body, expect=None)
    assert response.status_code in (400, 422)
    assert b"<RestException>" in response.content or b'"status"' in response.content
    assert row_count(settings, account.sid) == 0


def test_non_wav_audio_is_normalised(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest, tmp_path
) -> None:
    mp3 = tmp_path / "in.mp3"
    subprocess.run(
        [
            settings.ffmpeg_path,
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=16000:duration=5",
            str(mp3),
        ],
        check=True,
    )
    body = ingest(account, mp3.read_bytes()).json()
    assert body["duration"] == "5"
    wav = client.get(f"{account.base}/{body['sid']}.wav").content
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"


def test_upload_cut_half_way_leaves_no_row(
    server: object, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    """The client promises more bytes than it sends and hangs up."""
    port = int(server.base_url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    head = (
        f"POST /internal/Accounts/{account.sid}/Recordings?CallSid={new_sid('CA')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
        f"Content-Length: {len(demo_wav) * 10}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head + demo_wav)
    # A complete upload afterwards shows the server is healthy and the cut one left nothing.
    with httpx.Client(base_url=server.base_url) as http:  # type: ignore[attr-defined]
        ok = http.post(
            f"/internal/Accounts/{account.sid}/Recordings",
            params={"CallSid": new_sid("CA")},
            content=demo_wav,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        )
    assert ok.status_code == 201
    assert row_count(settings, account.sid) == 1


def test_too_large_upload_is_413_before_the_body_is_read(server: object, account: Account) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    head = (
        f"POST /internal/Accounts/{account.sid}/Recordings?CallSid={new_sid('CA')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
        f"Content-Length: {10**12}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + b"RIFF")
        answer = b""
        while b"</TwilioResponse>" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"<RestException>" in answer


def test_upload_over_the_limit_without_a_length_is_413(
    server: object, postgres: object, s3: object, account: Account, demo_wav: bytes
) -> None:
    from tests.conftest import ServerThread, make_settings

    small = make_settings(postgres, s3, max_upload_bytes=1000)  # type: ignore[arg-type]
    with ServerThread(small) as limited, httpx.Client(base_url=limited.base_url) as http:
        response = http.post(
            f"/internal/Accounts/{account.sid}/Recordings",
            params={"CallSid": new_sid("CA")},
            content=iter([demo_wav]),
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
        )
    assert response.status_code == 413
