"""The fast path takes a GET only when the router would have chosen the same route, and only
endpoints it can call with the arguments FastAPI would have given them."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute

from service.app import create_app
from service.http.deps import ServicesDep
from service.http.fastpath import FastPathMiddleware, NotFastPathable, fast_path, fast_routes

APP = create_app()
HEX = "0123456789abcdef"


async def _unused_handler(request: Request, exc: Exception) -> Response:
    raise AssertionError("not called")


FAST = FastPathMiddleware(APP, routes=APP.router.routes, handle=_unused_handler)


def router_choice(path: str) -> BaseRoute | None:
    """The route the app's own router picks for a GET of ``path``.

    The router leaves its choice in the scope before calling the endpoint, which then fails
    for want of the running app's services and middleware; that failure is beside the point.
    """
    scope: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "root_path": "",
        "scheme": "http",
        "server": ("testserver", 80),
        "app": APP,
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        pass

    async def route() -> None:
        try:
            await APP.router(scope, receive, send)
        except Exception:
            pass

    asyncio.run(route())
    return scope.get("route")


def sid(prefix: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(HEX, min_size=32, max_size=32).map(lambda h: prefix + h),
        st.sampled_from(
            [prefix, "x", "RE", prefix + "0" * 31, "%2F", "..", prefix.lower() + "0" * 32]
        ),
    )


NAMES = st.tuples(
    sid("RE"),
    st.sampled_from(
        [
            "",
            ".xml",
            ".json",
            ".XML",
            ".Json",
            ".wav",
            ".mp3",
            ".html",
            ".csv",
            ".xml.json",
            "/Peaks.json",
            "/Transcriptions.json",
            "/AddOnResults.json",
            "/",
            "/x.json",
        ]
    ),
).map("".join)

PATHS = st.builds(
    lambda version, account, middle, name: f"/{version}/Accounts/{account}/{middle}{name}",
    st.sampled_from(["2008-08-01", "2010-04-01", "2009-01-01"]),
    sid("AC"),
    st.one_of(
        st.just("Recordings/"),
        sid("CA").map(lambda call: f"Calls/{call}/Recordings/"),
        st.sampled_from(["Recordings", "Recordings.json", "Recordings.html"]),
    ),
    st.one_of(NAMES, st.just("")),
)


@settings(max_examples=400, deadline=None)
@given(PATHS)
def test_the_fast_path_takes_what_the_router_would_choose_and_nothing_else(path: str) -> None:
    chosen = FAST.choose(path)
    expected = router_choice(path)
    if chosen is None:
        # Left to the router: it must not have been a marked GET route.
        assert all(expected is not fast.route for fast in FAST.table), path
    else:
        route, params = chosen[0].route, chosen[1]
        assert route is expected, (path, route.path, getattr(expected, "path", None))
        assert params == route.path_regex.match(path).groupdict()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        (f"/2008-08-01/Accounts/AC{'0' * 32}/Recordings/RE{'1' * 32}.xml", "get_recording"),
        (f"/2008-08-01/Accounts/AC{'0' * 32}/Recordings/RE{'1' * 32}.json", "get_recording"),
        (f"/2010-04-01/Accounts/AC{'0' * 32}/Recordings/RE{'1' * 32}.json", "fetch_recording"),
        (
            f"/2010-04-01/Accounts/AC{'0' * 32}/Calls/CA{'2' * 32}/Recordings/RE{'1' * 32}.json",
            "fetch_call_recording",
        ),
    ],
)
def test_metadata_gets_of_both_faces_take_the_fast_path(path: str, endpoint: str) -> None:
    chosen = FAST.choose(path)
    assert chosen is not None
    assert chosen[0].route.endpoint.__name__ == endpoint


def test_pages_and_peaks_under_the_same_paths_stay_with_the_router() -> None:
    base = f"/2008-08-01/Accounts/AC{'0' * 32}/Recordings/RE{'1' * 32}"
    assert FAST.choose(base + ".html") is None
    assert FAST.choose(base + "/Peaks.json") is None
    assert FAST.choose(f"/2008-08-01/Accounts/AC{'0' * 32}/Recordings.json") is None


def _app_with(endpoint: Any) -> list[BaseRoute]:
    router = APIRouter()
    router.get("/things/{name}")(fast_path(endpoint))
    app = FastAPI()
    app.include_router(router)
    return app.router.routes


async def _header_endpoint(name: str, x_thing: Annotated[str, Header()]) -> Response:
    return Response(x_thing)


async def _query_endpoint(name: str, limit: int = 10) -> Response:
    return Response(str(limit))


def _sync_dependency(request: Request) -> int:
    return 1


async def _sync_dependency_endpoint(
    name: str, value: Annotated[int, Depends(_sync_dependency)]
) -> Response:
    return Response(str(value))


async def _services_endpoint(name: str, request: Request, services: ServicesDep) -> Response:
    return Response(name)


@pytest.mark.parametrize("endpoint", [_header_endpoint, _query_endpoint, _sync_dependency_endpoint])
def test_endpoints_that_need_fastapis_resolution_are_refused(endpoint: Any) -> None:
    with pytest.raises(NotFastPathable):
        fast_routes(_app_with(endpoint))


def test_path_params_the_request_and_async_request_dependencies_are_accepted() -> None:
    (fast,) = fast_routes(_app_with(_services_endpoint))
    assert fast.request_param == "request"
    assert [name for name, _ in fast.dependencies] == ["services"]
