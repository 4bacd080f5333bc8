"""The accounts domain's v1 API (``accounts.twilio.com/v1``), which twilio-python reaches
through ``client.accounts.base_url``: one router per resource, registered one line each."""

from __future__ import annotations

from fastapi import APIRouter

from service.faces import Face
from service.faces.v1.auth_tokens import router as auth_tokens
from service.faces.v1.public_keys import router as public_keys
from service.faces.v2010.errors import render_error

router = APIRouter()
router.include_router(auth_tokens, include_in_schema=False)
router.include_router(public_keys, include_in_schema=False)

# Errors as the 2010 face gives them: Twilio's JSON error, which the libraries read.
face = Face(router, prefix="/v1/", render_error=render_error)
