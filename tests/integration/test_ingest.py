"""The ingest endpoint: token, validation, measurement, and no row without a durable object."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from pathlib import Path

import httpx
import pytest

import service.ingest.pipeline
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import INGEST_TOKEN, Account, Ingest, new_account, upload
from tests.support.ffmpeg import generate, sine
from tests.support.rawhttp import raw_request
from tests.support.rows import fetch_rows, recording_sids
from tests.support.stack import ServerThread, make_settings


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
    assert recording_sids(settings.database_url, account.sid) == []


def test_non_wav_audio_is_normalised(
    client: httpx.Client, settings: Settings, account: Account, ingest: Ingest, tmp_path: Path
) -> None:
    mp3 = generate(settings.ffmpeg_path, tmp_path / "in.mp3", *sine(16_000, 5))
    body = ingest(account, mp3.read_bytes()).json()
    assert body["duration"] == "5"
    wav = client.get(f"{account.base}/{body['sid']}.wav").content
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"


def test_upload_cut_half_way_leaves_no_row(
    server: ServerThread, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    """The client promises more bytes than it sends and hangs up."""
    head = (
        f"POST /internal/Accounts/{account.sid}/Recordings?CallSid={new_sid('CA')} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {INGEST_TOKEN}\r\n"
        f"Content-Length: {len(demo_wav) * 10}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + demo_wav)
    # A complete upload afterwards shows the server is healthy and the cut one left nothing.
    with httpx.Client(base_url=server.base_url) as http:
        upload(http, account, demo_wav)
    assert len(recording_sids(settings.database_url, account.sid)) == 1


def test_too_large_upload_is_413_before_the_body_is_read(
    server: ServerThread, account: Account
) -> None:
    got = raw_request(
        server.base_url,
        "POST",
        f"/internal/Accounts/{account.sid}/Recordings?CallSid={new_sid('CA')}",
        [("Authorization", f"Bearer {INGEST_TOKEN}")],
        b"RIFF",
        timeout=10,
        content_length=10**12,
    )
    assert got is not None
    assert got.head.startswith(b"HTTP/1.1 413 ")
    assert b"<RestException>" in got.body


def test_upload_over_the_limit_without_a_length_is_413(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, account: Account, demo_wav: bytes
) -> None:
    small = make_settings(postgres, s3, max_upload_bytes=1000)
    with ServerThread(small) as limited, httpx.Client(base_url=limited.base_url) as http:
        upload(http, account, iter([demo_wav]), suffix="", expect=413)


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
    assert recording_sids(settings.database_url, account.sid) == []
    assert list(tmp_path.iterdir()) == []


def test_a_wav_stored_as_it_came_is_not_read_again_for_its_etag(
    client: httpx.Client,
    settings: Settings,
    account: Account,
    demo_wav: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The digest taken while the body was spooled is the stored bytes' digest already.
    reads: list[Path] = []
    real = service.ingest.pipeline.file_etag
    monkeypatch.setattr(
        service.ingest.pipeline, "file_etag", lambda path: reads.append(path) or real(path)
    )
    sid = upload(client, account, demo_wav).json()["sid"]
    (row,) = fetch_rows(
        settings.database_url, "SELECT wav_etag FROM recordings WHERE sid = $1", sid
    )
    assert row["wav_etag"] == f'"{hashlib.sha256(demo_wav).hexdigest()[:40]}"'
    assert reads == []
