"""Accel delivery (RECORDINGS_MEDIA_DELIVERY=accel): a real nginx running deploy/nginx.conf in
front of a real API and SeaweedFS answers every media request exactly as the same nginx in front
of a proxy-mode API does, while the bytes come from storage through nginx alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.http.media import ACCEL_LOCATION, ACCEL_RANGE_HEADER, ACCEL_URL_HEADER
from service.settings import Settings
from tests.support.clients import Account, set_media_auth, uploaded_sid
from tests.support.deployfiles import NGINX_CONF, parse_nginx, the_server
from tests.support.nginx import Proxy, nginx_proxy
from tests.support.stack import ServerThread, make_settings
from tests.support.wavs import noise_wav

# Differ between any two answers, whoever sends them.
PER_ANSWER = {"date", "x-request-id"}


@dataclass
class Pair:
    accel_api: ServerThread
    accel: Proxy
    proxy: Proxy


@pytest.fixture(scope="module")
def pair(
    postgres: EmbeddedPostgres,
    s3: EmbeddedS3,
    settings: Settings,  # its bucket exists
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Pair]:
    """nginx in front of an accel-mode API, and nginx in front of a proxy-mode API, one store."""
    with ExitStack() as stack:
        accel_api = stack.enter_context(
            ServerThread(make_settings(postgres, s3, media_delivery="accel"))
        )
        proxy_api = stack.enter_context(ServerThread(make_settings(postgres, s3)))
        accel = stack.enter_context(
            nginx_proxy(tmp_path_factory.mktemp("accel"), [accel_api.port, accel_api.port])
        )
        proxy = stack.enter_context(
            nginx_proxy(tmp_path_factory.mktemp("proxy"), [proxy_api.port, proxy_api.port])
        )
        yield Pair(accel_api, accel, proxy)


@pytest.fixture(scope="module")
def big_wav() -> bytes:
    # Several of nginx's and the service's buffers, so the body really streams.
    return noise_wav(8000 * 300, seed=13)


def test_the_internal_location_sends_storage_only_the_decided_range() -> None:
    server = the_server(parse_nginx(NGINX_CONF.read_text()))
    (media,) = [d for d in server.find("location") if d.args == [ACCEL_LOCATION]]
    names = [d.name for d in media.block or []]
    assert "internal" in names  # never reachable from outside
    assert [d.args for d in media.find("proxy_pass_request_headers")] == [["off"]]
    sets = {d.args[0]: d.args[1] for d in media.find("set")}
    assert sets["$media_url"] == "$upstream_http_" + ACCEL_URL_HEADER.lower().replace("-", "_")
    assert sets["$media_range"] == "$upstream_http_" + ACCEL_RANGE_HEADER.lower().replace("-", "_")
    headers = {d.args[0].lower(): d.args[1] for d in media.find("proxy_set_header")}
    assert headers["range"] == "$media_range"
    assert [d.args for d in media.find("proxy_pass")] == [["$media_url"]]


def _both(
    pair: Pair, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[tuple[int, dict[str, str], bytes], tuple[int, dict[str, str], bytes]]:
    return pair.accel.request(method, target, headers), pair.proxy.request(method, target, headers)


def _same(pair: Pair, method: str, target: str, headers: dict[str, str] | None = None) -> None:
    accel, proxy = _both(pair, method, target, headers)
    assert accel[0] == proxy[0], (target, headers, accel[0], proxy[0], accel[2][:300])
    assert accel[2] == proxy[2], (target, headers, len(accel[2]), len(proxy[2]))
    a = {k: v for k, v in accel[1].items() if k not in PER_ANSWER}
    p = {k: v for k, v in proxy[1].items() if k not in PER_ANSWER}
    assert a == p, (target, headers)
    assert "x-request-id" in accel[1]


def test_accel_answers_as_proxy_mode_does_on_both_api_versions(
    pair: Pair, account: Account, big_wav: bytes
) -> None:
    with httpx.Client(base_url=pair.accel_api.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, big_wav)
        # The API itself hands the body to nginx: an empty answer naming storage.
        direct = http.get(f"{account.base}/{sid}.wav", headers={"Range": "bytes=5-9"})
        assert direct.headers["x-accel-redirect"].startswith(ACCEL_LOCATION)
        assert direct.headers[ACCEL_URL_HEADER].startswith("http://127.0.0.1:")
        assert direct.headers[ACCEL_RANGE_HEADER] == "bytes=5-9"
        assert direct.content == b""
        etag = direct.headers["etag"]
        last_modified = direct.headers["last-modified"]
    v2010 = f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}"
    for target in (f"{account.base}/{sid}", f"{account.base}/{sid}.wav", f"{v2010}.wav"):
        status, headers, body = pair.accel.request("GET", target)
        assert (status, body) == (200, big_wav)
        assert headers["content-length"] == str(len(big_wav))
        assert headers["etag"] == etag and headers["content-type"] == "audio/x-wav"
        assert not [k for k in headers if k.startswith(("x-amz", "x-media", "x-accel"))]
        status, headers, body = pair.accel.request("GET", target, {"Range": "bytes=100-4195"})
        assert (status, body) == (206, big_wav[100:4196])
        assert headers["content-range"] == f"bytes 100-4195/{len(big_wav)}"
        for case in (
            None,
            {"Range": "bytes=100-4195"},
            {"Range": "bytes=-1000"},
            {"Range": f"bytes={len(big_wav) - 10}-"},
            {"Range": "bytes=0-0,5-9"},  # several ranges: the whole body
            {"Range": "bytes=9-0"},  # malformed: the whole body
            {"Range": f"bytes={len(big_wav)}-"},  # 416
            {"Range": "bytes=0-9", "If-Range": '"other"'},  # a stale If-Range: the whole body
            {"Range": "bytes=0-9", "If-Range": etag},
            {"If-None-Match": etag},  # 304
            {"If-Modified-Since": last_modified},  # 304
            {"If-Match": '"other"'},  # 412
            {"If-Unmodified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"},  # 412
            {"If-None-Match": '"other"', "Range": "bytes=1-2"},
            {"Origin": "https://pages.example"},
        ):
            _same(pair, "GET", target, case)
        _same(pair, "HEAD", target)
        _same(pair, "HEAD", target, {"Range": "bytes=0-9"})
    status, _, _ = pair.accel.request("GET", f"{account.base}/{sid}.wav", {"If-None-Match": etag})
    assert status == 304
    status, _, _ = pair.accel.request("GET", f"{account.base}/{sid}.wav", {"If-Match": '"x"'})
    assert status == 412
    # The MP3 too (made on the first request, then served from storage by nginx).
    status, headers, mp3 = pair.accel.request("GET", f"{v2010}.mp3")
    assert status == 200 and headers["content-type"] == "audio/mpeg"
    assert headers["content-length"] == str(len(mp3)) and (mp3[:3] == b"ID3" or mp3[:1] == b"\xff")
    _same(pair, "GET", f"{account.base}/{sid}.mp3")
    _same(pair, "GET", f"{v2010}.mp3", {"Range": "bytes=1000-1999"})


def test_accel_never_serves_deleted_or_private_media_without_credentials(
    pair: Pair, account: Account, demo_wav: bytes
) -> None:
    with httpx.Client(base_url=pair.accel_api.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, demo_wav)
        kept = uploaded_sid(http, account, demo_wav)
    wav = f"{account.base}/{sid}.wav"
    assert pair.accel.request("GET", wav)[2] == demo_wav
    set_media_auth(pair.accel_api.settings.database_url, account.sid, True)
    try:
        for target in (wav, f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.wav"):
            status, headers, body = pair.accel.request("GET", target)
            assert status == 401 and demo_wav not in body
            assert headers["www-authenticate"].startswith("Basic")
            status, _, body = pair.accel.request("GET", target, {"Range": "bytes=0-99"})
            assert status == 401 and demo_wav[:100] not in body
            status, headers, body = pair.accel.request(
                "GET", target, {"Authorization": account.basic_auth}
            )
            assert (status, body) == (200, demo_wav)
            assert headers["cache-control"].startswith("private")
            _same(pair, "GET", target, {"Authorization": account.basic_auth})
            _same(pair, "GET", target, {"Authorization": account.basic_auth, "Range": "bytes=3-9"})
    finally:
        set_media_auth(pair.accel_api.settings.database_url, account.sid, False)
    status, _, _ = pair.accel.request(
        "DELETE", f"{account.base}/{sid}", {"Authorization": account.basic_auth}
    )
    assert status == 204
    for target in (wav, f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.wav"):
        status, _, body = pair.accel.request("GET", target)
        assert status == 404 and demo_wav not in body
    assert pair.accel.request("GET", f"{account.base}/{kept}.wav")[2] == demo_wav


def test_the_internal_location_is_not_reachable_from_outside(pair: Pair) -> None:
    status, headers, body = pair.accel.request("GET", ACCEL_LOCATION + "RE0.wav")
    # nginx refuses it itself (its 404, given as the location's 502): nothing was fetched.
    assert status in (404, 502) and "x-request-id" not in headers and b"<Error>" not in body
