"""Browser-facing media delivery: every Range form and every conditional request, end to end."""

from __future__ import annotations

import httpx
import pytest

from tests.support.clients import Account, Ingest, Tenants
from tests.support.stack import ServerThread


@pytest.fixture
def wav(
    client: httpx.Client, account: Account, ingest: Ingest, demo_wav: bytes
) -> tuple[str, bytes]:
    sid = ingest(account).json()["sid"]
    return f"{account.base}/{sid}.wav", demo_wav


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-0", 0, 0),
        ("bytes=0-99", 0, 99),
        ("bytes=-100", None, None),
        ("bytes=1000-", 1000, None),
        ("bytes=100-10000000", 100, None),
    ],
)
def test_single_ranges_get_206(
    client: httpx.Client, wav: tuple[str, bytes], header: str, first: int | None, last: int | None
) -> None:
    url, body = wav
    size = len(body)
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 206
    if first is None:
        expected_first, expected_last = size - 100, size - 1
    else:
        expected_first, expected_last = first, size - 1 if last is None else last
    assert response.content == body[expected_first : expected_last + 1]
    assert response.headers["content-range"] == f"bytes {expected_first}-{expected_last}/{size}"
    assert response.headers["content-length"] == str(expected_last - expected_first + 1)
    assert response.headers["content-type"] == "audio/x-wav"


def test_past_the_end_is_416(client: httpx.Client, wav: tuple[str, bytes]) -> None:
    url, body = wav
    response = client.get(url, headers={"Range": f"bytes={len(body)}-"})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(body)}"
    assert b"<Status>416</Status>" in response.content


@pytest.mark.parametrize(
    "header",
    ["bytes=abc", "bytes=5-1", "lines=0-5", "bytes=0-1,4-5", "bytes=" + ",".join(["0-1"] * 1000)],
)
def test_malformed_and_multi_ranges_get_the_whole_body(
    client: httpx.Client, wav: tuple[str, bytes], header: str
) -> None:
    url, body = wav
    response = client.get(url, headers={"Range": header})
    assert response.status_code == 200
    assert response.content == body
    assert "content-range" not in response.headers


def test_head_with_range(client: httpx.Client, wav: tuple[str, bytes]) -> None:
    url, body = wav
    response = client.head(url, headers={"Range": "bytes=10-19"})
    assert response.status_code == 206
    assert response.headers["content-length"] == "10"
    assert response.headers["content-range"] == f"bytes 10-19/{len(body)}"


def test_if_none_match_and_if_modified_since(client: httpx.Client, wav: tuple[str, bytes]) -> None:
    url, _ = wav
    first = client.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    cached = client.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    assert client.get(url, headers={"If-None-Match": f'"other", W/{etag}'}).status_code == 304
    assert client.get(url, headers={"If-None-Match": "*"}).status_code == 304
    assert client.get(url, headers={"If-None-Match": '"nope"'}).status_code == 200
    assert client.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert (
        client.get(url, headers={"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}).status_code
        == 200
    )
    assert client.get(url, headers={"If-Modified-Since": "garbage"}).status_code == 200
    # If-None-Match wins over If-Modified-Since.
    assert (
        client.get(
            url, headers={"If-None-Match": '"nope"', "If-Modified-Since": modified}
        ).status_code
        == 200
    )


def test_if_match_and_if_unmodified_since(client: httpx.Client, wav: tuple[str, bytes]) -> None:
    url, _ = wav
    etag = client.head(url).headers["etag"]
    assert client.get(url, headers={"If-Match": etag}).status_code == 200
    assert client.get(url, headers={"If-Match": '"nope"'}).status_code == 412
    assert (
        client.get(
            url, headers={"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}
        ).status_code
        == 412
    )


def test_if_range(client: httpx.Client, wav: tuple[str, bytes]) -> None:
    url, body = wav
    head = client.head(url)
    etag, modified = head.headers["etag"], head.headers["last-modified"]
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": etag}).status_code == 206
    assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": modified}).status_code == 206
    stale = client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200
    assert stale.content == body
    weak = client.get(url, headers={"Range": "bytes=0-9", "If-Range": f"W/{etag}"})
    assert weak.status_code == 200


def test_cors_preflight(client: httpx.Client, wav: tuple[str, bytes]) -> None:
    url, _ = wav
    response = client.options(
        url,
        headers={
            "Origin": "https://player.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "range",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "range" in response.headers["access-control-allow-headers"].lower()
    exposed = client.get(url, headers={"Origin": "https://player.example"}).headers
    assert "Content-Range" in exposed["access-control-expose-headers"]


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
