"""2008 responses in the representation the path's suffix asks for."""

from __future__ import annotations

from fastapi import Response

import service.faces.v2008.representations as rep
from db.recordings import Recording
from service.errors import NotFound
from service.http.representations import CSV_TYPE, JSON_TYPE, XML_TYPE
from service.recordings.paging import NumberedPage


def split_suffix(suffix: str, allowed: set[str]) -> str:
    """The representation a path suffix names; unknown ones are a 404."""
    if suffix not in allowed:
        raise NotFound()
    return suffix


def split_name(name: str) -> tuple[str, str]:
    """``RE...mp3`` -> (``RE...``, ``.mp3``)."""
    base, dot, ext = name.partition(".")
    return base, (dot + ext.lower()) if dot else ""


def render_recording(recording: Recording, fmt: str, *, status_code: int = 200) -> Response:
    if fmt == ".json":
        return Response(rep.recording_json(recording), status_code, media_type=JSON_TYPE)
    return Response(rep.recording_xml(recording), status_code, media_type=XML_TYPE)


def render_page(page: NumberedPage, uris: rep.PageUris, fmt: str) -> Response:
    if fmt == ".json":
        return Response(rep.list_json(page, uris), media_type=JSON_TYPE)
    if fmt == ".csv":
        return Response(rep.list_csv(page), media_type=CSV_TYPE)
    return Response(rep.list_xml(page, uris), media_type=XML_TYPE)
