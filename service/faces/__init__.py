"""The faces of the service: each API version, ingest, health. A face parses, authorizes, calls
the core and renders; ``Face`` is what the app needs to know of one."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter

from service.http.errors import ErrorRenderer, render_rest_exception


@dataclass(frozen=True)
class Face:
    router: APIRouter
    # Errors on paths under ``prefix`` are rendered by ``render_error``.
    prefix: str = "/"
    render_error: ErrorRenderer = render_rest_exception
