"""``/`` and ``/docs``: plain HTML made from the OpenAPI document, nothing fetched elsewhere."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "code{background:#f3f3f3;padding:0 .2em}td,th{padding:.2rem .6rem;text-align:left;"
    "vertical-align:top}tr:nth-child(even){background:#fafafa}"
)
_HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}


def _page(title: str, body: str) -> HTMLResponse:
    html = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style><body>{body}</body></html>"
    )
    return HTMLResponse(html, headers=_HEADERS)


@router.get("/")
async def index() -> HTMLResponse:
    return _page(
        "Recordings",
        "<h1>Recordings</h1><p>A Twilio-compatible Recordings service.</p><ul>"
        "<li>API: <code>/2008-08-01/Accounts/{AccountSid}/Recordings</code></li>"
        "<li><a href=/docs>Every route</a> and the <a href=/openapi.json>OpenAPI document</a></li>"
        "<li><a href=/healthz>/healthz</a>, <a href=/readyz>/readyz</a></li></ul>",
    )


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    schema: dict[str, Any] = request.app.openapi()
    rows = []
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            statuses = ", ".join(str(s) for s in operation.get("responses", {}))
            rows.append(
                f"<tr><td><code>{escape(method.upper())}</code></td><td><code>{escape(path)}"
                f"</code></td><td>{escape(operation.get('summary', ''))}</td>"
                f"<td>{escape(statuses)}</td></tr>"
            )
    return _page(
        "Recordings API",
        f"<h1>{escape(schema['info']['title'])} API</h1>"
        "<p>The machine-readable form: <a href=/openapi.json>/openapi.json</a>.</p>"
        "<table><tr><th>method</th><th>path</th><th>what</th><th>answers</th></tr>"
        + "".join(rows)
        + "</table>",
    )
