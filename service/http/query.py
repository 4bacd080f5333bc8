"""Raw query strings, decoded in order, keeping the keys old clients send (``DateCreated>``)."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from service.errors import BadRequest


def parse_query_string(raw: bytes) -> list[tuple[str, str]]:
    """Decode ``a=b&c=d`` keeping order and blank values; undecodable text is a 400."""
    pairs = []
    for piece in raw.split(b"&"):
        if not piece:
            continue
        key, sep, value = piece.partition(b"=")
        try:
            k = unquote_to_bytes(key.replace(b"+", b" ")).decode("utf-8")
            v = unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("The query string is not valid UTF-8") from exc
        if not sep and "=" in k:
            # "DateCreated%3E%3D2009-07-06": the whole pair was percent-encoded.
            k, _, v = k.partition("=")
        pairs.append((k, v))
    return pairs
