"""Twilio's request signature: ``X-Twilio-Signature``, as twilio-python's RequestValidator
checks it (twilio/request_validator.py, ``compute_signature``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

import httpx

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


def wire_url(url: str) -> httpx.URL:
    """``url`` as it goes on the wire, which is what a receiver rebuilds from the request's Host
    and target and validates the signature over: the host lowercased, a default port left out,
    ``./`` and ``../`` resolved, characters a request target cannot carry percent-encoded.

    An empty query (a trailing ``?``) is dropped: twilio-python's RequestValidator rebuilds the
    URL without it and twilio-node's keeps it, so only a URL without one validates with both.
    """
    parsed = httpx.URL(url)
    if parsed.query == b"" and parsed.raw_path.endswith(b"?"):
        parsed = parsed.copy_with(raw_path=parsed.raw_path[:-1])
    return parsed
