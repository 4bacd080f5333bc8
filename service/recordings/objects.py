"""Where a recording's objects live in storage: the one place that makes and reads their keys."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from db.recordings import Recording
from storage.client import Storage

# "peaks": the waveform's min/max pairs as audiowaveform JSON (service.peaks); "mono.wav" and
# "mono.mp3": the mono mixes of a recording with two channels (service.mp3.mixes).
Kind = Literal["wav", "mp3", "peaks", "mono.wav", "mono.mp3"]
KINDS: tuple[Kind, ...] = ("wav", "mp3", "peaks", "mono.wav", "mono.mp3")
CONTENT_TYPES: dict[Kind, str] = {
    "wav": "audio/x-wav",
    "mp3": "audio/mpeg",
    "peaks": "application/json",
    "mono.wav": "audio/x-wav",
    "mono.mp3": "audio/mpeg",
}
# Only keys of this shape are ever written, so only they are ever collected as orphans.
_KEY = re.compile(r"(AC[0-9a-f]{32})/(RE[0-9a-f]{32})\.(wav|mp3|peaks|mono\.wav|mono\.mp3)")


@dataclass(frozen=True)
class ObjectName:
    """What a key says: whose object, of which recording, of which kind."""

    account_sid: str
    sid: str
    kind: Kind


def object_key(storage: Storage, account_sid: str, sid: str, kind: Kind) -> str:
    """The key of one of a recording's objects, under the configured prefix."""
    return storage.key(f"{account_sid}/{sid}.{kind}")


def recording_keys(storage: Storage, recording: Recording) -> list[str]:
    """Every key a recording may have: those its row names, and those a transcode (or the
    peaks) racing a DELETE may have written before the row could name them."""
    derived = {object_key(storage, recording.account_sid, recording.sid, kind) for kind in KINDS}
    named = {key for key in (recording.wav_key, recording.mp3_key) if key}
    return sorted(derived | named)


def parse_key(storage: Storage, key: str) -> ObjectName | None:
    """The recording an object key belongs to; None for keys this service never writes."""
    prefix = storage.key("")
    if not key.startswith(prefix):
        return None
    match = _KEY.fullmatch(key[len(prefix) :])
    if match is None:
        return None
    kind = next(k for k in KINDS if k == match[3])
    return ObjectName(match[1], match[2], kind)


def etag_of(sha256_hex: str) -> str:
    """A strong ETag: the first 160 bits of the SHA-256 of the stored bytes."""
    return f'"{sha256_hex[:40]}"'


def file_etag(path: Path) -> str:
    """The strong ETag of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return etag_of(digest.hexdigest())
