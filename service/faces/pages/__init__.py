"""Pages people look at: a recording's player with its waveform, an account's list; and the
waveform peaks (Peaks.json) those pages and other players draw from."""

from __future__ import annotations

from service.faces import Face
from service.faces.pages.rendering import render_error_page
from service.faces.pages.routes import router

# The pages' own paths under both API versions are answered by their routes (which render
# their errors as pages); /pages/ holds only the static assets.
face = Face(router, prefix="/pages/", render_error=render_error_page)
