"""Oversized request heads and query strings against `recordings serve` itself (uvloop and
httptools, the server a deployment runs): a 4xx or a closed connection, never a 5xx or a hang."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.settings import Settings
from tests.support.clients import Tenants
from tests.support.rawhttp import RawResponse, raw_request
from tests.support.stack import recordings_env, recordings_serve


def _closed_or_4xx(got: RawResponse | None) -> None:
    """A 4xx (431, 414, 400 ... ) or a closed connection; never a 2xx, a 5xx or a hang."""
    if got is None:
        return  # the connection was closed without an answer: acceptable
    assert 400 <= got.status < 500, f"{got.status}: {got.body[:200]!r}"


@pytest.fixture(scope="module")
def served(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``recordings serve`` on the session's servers."""
    env = recordings_env(settings, RECORDINGS_TRANSCODE_ON_INGEST="false")
    with recordings_serve(env, tmp_path_factory.mktemp("serve") / "serve.log") as base_url:
        yield base_url


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
    auth = [("Authorization", tenants.a.basic_auth)]
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
