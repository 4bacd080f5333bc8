"""Liveness, readiness and metrics."""

from __future__ import annotations

from service.faces import Face
from service.faces.health.routes import router

face = Face(router)
