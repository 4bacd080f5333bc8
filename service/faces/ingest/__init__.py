"""The voice platform's upload endpoint."""

from __future__ import annotations

from service.faces import Face
from service.faces.ingest.document import router

face = Face(router, prefix="/internal/")
