"""Responses in the representation the path's suffix asks for."""

from __future__ import annotations

from fastapi import Response

from db.recordings import Recording
from service import representations as rep
from service.errors import NotFound


def split_suffix(suffix: str, allowed: set[str]) -> str:
    """The representation a path suffix names; unknown ones are a 404."""
    if suffix not in allowed:
        raise NotFound("The requested resource was not found")
    return suffix


def split_name(name: str) -> tuple[str, str]:
    """``RE...mp3`` -> (``RE...``, ``.mp3``)."""
    base, dot, ext = name.partition(".")
    return base, (dot + ext.lower()) if dot else ""


def error_format(path: str) -> str:
    """Errors come back as JSON for ``.json`` paths and as XML everywhere else."""
    return ".json" if path.endswith(".json") else ".xml"


def render_recording(recording: Recording, fmt: str, *, status_code: int = 200) -> Response:
    if fmt == ".json":
        return Response(rep.recording_json(recording), status_code, media_type=rep.JSON_TYPE)
    return Response(rep.recording_xml(recording), status_code, media_type=rep.XML_TYPE)


def render_page(page: rep.Page, fmt: str) -> Response:
    if fmt == ".json":
        return Response(rep.list_json(page), media_type=rep.JSON_TYPE)
    if fmt == ".csv":
        return Response(rep.list_csv(page), media_type=rep.CSV_TYPE)
    return Response(rep.list_xml(page), media_type=rep.XML_TYPE)


def render_error(status: int, message: str, path: str, headers: dict[str, str]) -> Response:
    if error_format(path) == ".json":
        body, media_type = rep.error_json(status, message), rep.JSON_TYPE
    else:
        body, media_type = rep.error_xml(status, message), rep.XML_TYPE
    return Response(body, status, headers=headers, media_type=media_type)
