"""The accounts domain (``/v1/...``, twilio-python's ``client.accounts``): Twilio's JSON errors."""

from __future__ import annotations

from fastapi import APIRouter

from service.faces import Face
from service.faces.v1.public_keys import router as public_keys
from service.faces.v2010.errors import render_error

router = APIRouter()
router.include_router(public_keys, include_in_schema=False)

face = Face(router, prefix="/v1/", render_error=render_error)
