"""The service's front door: what it is, where its API and its documentation are."""

from __future__ import annotations

from service.faces import Face
from service.faces.home.routes import router

face = Face(router)
