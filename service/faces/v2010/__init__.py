"""The 2010-04-01 API: the Recordings resources today's Twilio libraries speak."""

from __future__ import annotations

from service.faces import Face
from service.faces.v2010.document import router
from service.faces.v2010.errors import render_error

face = Face(router, prefix="/2010-04-01/", render_error=render_error)
