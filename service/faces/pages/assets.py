"""The pages' scripts and styles, served by the service itself: no CDN, no build step.

Read once; each URL carries its content's hash, so browsers may keep a file for good and a new
version of the service is fetched anew.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/pages/static"
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    version: str


@cache
def assets() -> dict[str, Asset]:
    """Every file of static/, by name; only these names are ever served."""
    found = {}
    for path in sorted(STATIC.iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            version = hashlib.sha256(body).hexdigest()[:16]
            found[path.name] = Asset(body, _TYPES[path.suffix], version)
    return found


def asset_url(root: str, name: str) -> str:
    """The URL of a static file, with its version."""
    return f"{root}{STATIC_PATH}/{name}?v={assets()[name].version}"
