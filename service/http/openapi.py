"""OpenAPI pieces every face's documentation shares: error answers from the error family."""

from __future__ import annotations

from typing import Any

from service.errors import ServiceError

BINARY = {"type": "string", "format": "binary"}
# The error bodies of render_rest_exception (service.http.errors): the 2008 face's, and the
# default of any path no face renders otherwise.
REST_EXCEPTION = {
    "application/xml": {
        "schema": {"type": "string", "description": "<TwilioResponse><RestException>..."}
    },
    "application/json": {
        "schema": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {"status": {"type": "integer"}, "message": {"type": "string"}},
        }
    },
}
Responses = dict[int | str, dict[str, Any]]


def error_responses(content: dict[str, Any], *errors: tuple[type[ServiceError], str]) -> Responses:
    """One response per (error class, when it happens), with the bodies of ``content``."""
    table: Responses = {}
    for error, when in errors:
        answer: dict[str, Any] = {
            "description": f"{when} (code {error.code}: {error.message})",
            "content": content,
        }
        if error.headers_sent:
            answer["headers"] = {
                name: {"schema": {"type": "string"}} for name in error.headers_sent
            }
        table[error.status] = answer
    return table


def query_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }
