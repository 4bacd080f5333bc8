"""The pages' routes under both API versions, Peaks.json beside the media, and the static files.

These paths would otherwise fall to the API faces' ``{name}`` and ``Recordings{suffix}`` routes
(as 404s), so this face is registered before them (service/app.py FACES).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response

from db.recordings import MediaLookup
from service.accounts.auth import authenticate, authorize_media
from service.errors import BadRequest, NotFound, ServiceError
from service.faces.pages.assets import STATIC_PATH, assets
from service.faces.pages.listing import echo_query, parse_page_query
from service.faces.pages.openapi import PEAKS_GET, PEAKS_PARAMETERS
from service.faces.pages.peaks import peaks_response
from service.faces.pages.rendering import pages_errors, render_page, root_path
from service.faces.pages.views import VERSIONS, RecordingView, Version
from service.http.cors import preflight_response
from service.http.deps import ServicesDep
from service.services import Services

# Only the 2008 API's Peaks.json is in the API's document (/openapi.json); the rest is pages.
router = APIRouter()
ASSET_CACHE = "public, max-age=31536000, immutable"
GET = ["GET", "HEAD"]


async def _owner_asks(services: Services, found: MediaLookup, header: str | None) -> bool:
    """Whether the page may show more than the public 2008 representation does (ConferenceSid,
    StartTime, Source, channels, sample rate): only to the account's own credentials. An
    account without enforced media auth has its page public, but only as public as its API."""
    if found.enforce_media_auth:
        return True  # authorize_media let the account's credentials through
    if header is None:
        return False
    try:
        await authenticate(services.pool, header, found.recording.account_sid)
    except ServiceError:
        return False  # a public page stays public, whatever else was sent
    return True


def _recording_page(version: Version) -> Callable[..., Awaitable[Response]]:
    @pages_errors
    async def recording_page(
        account_sid: str, sid: str, request: Request, services: ServicesDep
    ) -> Response:
        found = await services.catalog.fetch(account_sid, sid)
        header = request.headers.get("authorization")
        await authorize_media(services.pool, found, header)
        root = root_path(request)
        view = RecordingView.of(found.recording, version, root)
        return render_page(
            request,
            "recording.html",
            {
                "version": version,
                "recording": view,
                "list_url": version.list_page(root, account_sid),
                "undecodable": found.recording.mp3_error is not None,
                "detailed": await _owner_asks(services, found, header),
            },
        )

    return recording_page


def _list_page(version: Version) -> Callable[..., Awaitable[Response]]:
    @pages_errors
    async def list_page(account_sid: str, request: Request, services: ServicesDep) -> Response:
        account = await authenticate(
            services.pool, request.headers.get("authorization"), account_sid
        )
        root = root_path(request)
        base = version.list_page(root, account_sid)
        context = {"version": version, "account": account, "list_url": base}
        raw = request.scope["query_string"]
        try:
            query = parse_page_query(raw)
        except BadRequest as error:
            # The form again, as typed, with what was wrong: nothing is listed.
            return render_page(
                request,
                "recordings.html",
                {**context, "query": echo_query(raw), "error": error.message, "page": None},
                status_code=error.status,
            )
        page = await services.catalog.list_page(
            account_sid, query.filters, page=query.page, page_size=query.page_size
        )
        window = page.window

        def uri(number: int | None) -> str | None:
            return None if number is None else query.uri(base, number)

        return render_page(
            request,
            "recordings.html",
            {
                **context,
                "query": query,
                "error": None,
                "page": page,
                "rows": [RecordingView.of(r, version, root) for r in page.recordings],
                "first_url": uri(0) if window.page > 0 else None,
                "previous_url": uri(window.previous_page),
                "next_url": uri(window.next_page),
                "last_url": uri(window.last_page) if window.next_page is not None else None,
            },
        )

    return list_page


async def get_peaks(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    found = await services.catalog.fetch(account_sid, sid)
    await authorize_media(services.pool, found, request.headers.get("authorization"))
    return await peaks_response(services, request, found)


async def preflight_peaks(
    account_sid: str, sid: str, request: Request, services: ServicesDep
) -> Response:
    # A player on another origin sending credentials asks first, as for the media.
    return await preflight_response(services.pool, account_sid, request.headers.get("origin"))


for _name in VERSIONS:
    _version = Version(_name)
    _recordings = f"/{_name}/Accounts/{{account_sid}}/Recordings"
    _peaks = _recordings + "/{sid}/Peaks.json"
    router.add_api_route(
        _recordings + "/{sid}.html", _recording_page(_version), methods=GET, include_in_schema=False
    )
    router.add_api_route(
        _recordings + ".html", _list_page(_version), methods=GET, include_in_schema=False
    )
    router.add_api_route(
        _peaks,
        get_peaks,
        methods=["GET"],
        summary="A recording's waveform peaks",
        responses=PEAKS_GET,
        openapi_extra=PEAKS_PARAMETERS,
        # The 2010 API's document describes Twilio's resources, which have no peaks.
        include_in_schema=_name == "2008-08-01",
    )
    router.add_api_route(_peaks, get_peaks, methods=["HEAD"], include_in_schema=False)
    router.add_api_route(_peaks, preflight_peaks, methods=["OPTIONS"], include_in_schema=False)


@router.api_route(STATIC_PATH + "/{name}", methods=GET, include_in_schema=False)
async def get_asset(name: str) -> Response:
    asset = assets().get(name)
    if asset is None:
        raise NotFound()
    return Response(
        asset.body,
        media_type=asset.content_type,
        headers={
            "Cache-Control": ASSET_CACHE,
            "ETag": f'"{asset.version}"',
            "X-Content-Type-Options": "nosniff",
        },
    )
