"""Pages from Jinja2 templates: autoescaped, under a Content-Security-Policy that allows only
the service's own scripts, styles, media and requests."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec

import jinja2
from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from service.errors import ServiceError
from service.faces.pages.assets import asset_url
from service.http.errors import as_service_error

TEMPLATES = Path(__file__).parent / "templates"
# No inline script or style anywhere (values reach scripts only through data- attributes), so
# an injection that escaping missed still runs nothing; no frames, so no clickjacked Delete.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; media-src 'self';"
    " connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none';"
    " frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # Pages show an account's current state (and may be behind its credentials): never stored.
    "Cache-Control": "no-store",
}

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def root_path(request: Request) -> str:
    """Where the service is mounted (a proxy's path prefix), for the links a page holds."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def render_page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A template rendered with the page's common context, and the pages' headers."""
    root = root_path(request)
    html = _environment.get_template(template).render(
        root=root, asset=lambda name: asset_url(root, name), **context
    )
    return HTMLResponse(html, status_code, headers={**PAGE_HEADERS, **(headers or {})})


def render_error_page(error: ServiceError, request: Request) -> Response:
    """An error as a page, with the error's headers (WWW-Authenticate: the browser's prompt)."""
    return render_page(
        request,
        "error.html",
        {"status": error.status, "message": error.message},
        status_code=error.status,
        headers=error.headers,
    )


P = ParamSpec("P")


def pages_errors(
    endpoint: Callable[P, Awaitable[Response]],
) -> Callable[P, Awaitable[Response]]:
    """Errors of a page's route rendered as pages, not as the API's error documents."""

    @functools.wraps(endpoint)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await endpoint(*args, **kwargs)
        except Exception as exc:
            request = kwargs["request"]
            assert isinstance(request, Request)
            return render_error_page(as_service_error(request.app, request, exc), request)

    return wrapped
