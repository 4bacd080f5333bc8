"""What both fuzz modules share: the checks every answer must pass, and the operations of the
OpenAPI documents the service publishes, by label."""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def operations(*documents: dict[str, Any]) -> dict[str, Any]:
    """Every operation of these OpenAPI documents, by label ("GET /path")."""
    schemas = [schemathesis.openapi.from_dict(document) for document in documents]
    return {
        op.label: op for schema in schemas for op in (r.ok() for r in schema.get_all_operations())
    }
