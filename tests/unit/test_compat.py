"""The old clients' forgiveness: doubled slashes, the singular ``/Account/`` and
``POST ?_method=DELETE``, through the pure ASGI middleware in front of a tiny inline app."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from service.http.compat import CompatibilityMiddleware, normalise_path

Scope = dict[str, Any]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/2008-08-01/Accounts/AC1/Recordings", "/2008-08-01/Accounts/AC1/Recordings"),
        ("//2008-08-01/Accounts/AC1/Recordings", "/2008-08-01/Accounts/AC1/Recordings"),
        ("///2008-08-01/Accounts/AC1/Recordings", "/2008-08-01/Accounts/AC1/Recordings"),
        ("/2008-08-01/Account/AC1/Recordings/RE1", "/2008-08-01/Accounts/AC1/Recordings/RE1"),
        ("//2008-08-01/Account/AC1/Recordings.xml", "/2008-08-01/Accounts/AC1/Recordings.xml"),
        ("/2008-08-01/AccountX/AC1", "/2008-08-01/AccountX/AC1"),
        ("/2010-04-01/Account/AC1", "/2010-04-01/Account/AC1"),
        ("/x/2008-08-01/Account/AC1", "/x/2008-08-01/Account/AC1"),
        ("/2008-08-01/Accounts/AC1/Account/x", "/2008-08-01/Accounts/AC1/Account/x"),
        ("/", "/"),
        ("//", "/"),
    ],
)
def test_normalise_path(path: str, expected: str) -> None:
    assert normalise_path(path) == expected


def http_scope(method: str = "GET", path: str = "/healthz", query: bytes = b"") -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [],
    }


def through(scope: Scope) -> tuple[Scope, list[dict[str, Any]]]:
    """The scope the inner app saw, and the messages that reached the server's ``send``."""
    seen: list[Scope] = []
    sent: list[dict[str, Any]] = []

    async def app(inner: Scope, receive: Any, send: Any) -> None:
        seen.append(inner)
        body = (await receive())["body"]
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"payload", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(CompatibilityMiddleware(app)(scope, receive, send))
    (inner,) = seen
    return inner, sent


def test_an_ordinary_request_passes_untouched() -> None:
    scope = http_scope("GET", "/2008-08-01/Accounts/AC1/Recordings", b"num=5")
    inner, sent = through(scope)
    assert inner is scope
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1]["body"] == b"payload"  # the body streams through as it came


def test_old_paths_are_rewritten_in_a_copy_of_the_scope() -> None:
    scope = http_scope("GET", "//2008-08-01/Account/AC1/Recordings/RE1.wav")
    inner, _ = through(scope)
    assert inner["path"] == "/2008-08-01/Accounts/AC1/Recordings/RE1.wav"
    assert inner["raw_path"] == b"/2008-08-01/Accounts/AC1/Recordings/RE1.wav"
    assert inner["method"] == "GET"
    assert scope["path"] == "//2008-08-01/Account/AC1/Recordings/RE1.wav"


@pytest.mark.parametrize(
    ("method", "query", "expected"),
    [
        ("POST", b"_method=DELETE", "DELETE"),
        ("POST", b"_method=delete", "DELETE"),
        ("POST", b"x=1&_method=Delete&y=2", "DELETE"),
        ("POST", b"_method=%44ELETE", "DELETE"),
        ("POST", b"_method=PUT", "POST"),
        ("POST", b"_method=", "POST"),
        ("POST", b"method=DELETE", "POST"),
        ("POST", b"_method=%ff", "POST"),  # undecodable: no override, and no error here
        ("POST", b"", "POST"),
        ("GET", b"_method=DELETE", "GET"),  # only a POST is overridden
        ("PUT", b"_method=DELETE", "PUT"),
    ],
)
def test_method_override(method: str, query: bytes, expected: str) -> None:
    scope = http_scope(method, "/2008-08-01/Accounts/AC1/Recordings/RE1", query)
    inner, _ = through(scope)
    assert inner["method"] == expected
    assert inner["query_string"] == query
    assert scope["method"] == method


def test_both_at_once() -> None:
    inner, _ = through(
        http_scope("POST", "//2008-08-01/Account/AC1/Recordings/RE1", b"_method=DELETE")
    )
    assert (inner["method"], inner["path"]) == ("DELETE", "/2008-08-01/Accounts/AC1/Recordings/RE1")


@pytest.mark.parametrize("kind", ["lifespan", "websocket"])
def test_other_scopes_pass_untouched(kind: str) -> None:
    scope = {"type": kind, "path": "//2008-08-01/Account/AC1", "method": "POST"}
    inner, _ = through(scope)
    assert inner is scope
