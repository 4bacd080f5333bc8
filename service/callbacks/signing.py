"""Twilio's request signature: ``X-Twilio-Signature``, as twilio-python's RequestValidator
checks it (twilio/request_validator.py, ``compute_signature``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

SIGNATURE_HEADER = "X-Twilio-Signature"


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Base64 of the HMAC-SHA1, keyed by the AuthToken, of the full URL followed by each form
    parameter's name and value, sorted by name (a GET's parameters are in its URL instead)."""
    message = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode("utf-8"), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` appended to its query string, as a GET callback is sent."""
    if not params:
        return url
    joiner = "&" if "?" in url else "?"
    if url.endswith(("?", "&")):
        joiner = ""
    return url + joiner + urlencode(params)
