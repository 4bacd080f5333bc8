"""The 2008-08-01 API: the original Recordings resource."""

from __future__ import annotations

from service.faces import Face
from service.faces.v2008.routes import router

face = Face(router, prefix="/2008-08-01/")
