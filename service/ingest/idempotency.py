"""Idempotent ingest: a retry with the same Idempotency-Key gets the first request's answer.

A voice platform that lost a 201 (a timeout, a reset) retries; without a key, that makes a
second recording. The key is claimed in PostgreSQL, so replicas agree; a retry that arrives
while the first request still works waits for its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.ingest_keys import KEEP_FOR, answer_key, claim_key, release_key
from db.pool import Pool
from service.errors import BadRequest, Conflict

# The longest an ingest may take, from its first byte to its answer; a first request still
# "running" after this died without answering, and its key is free again.
LONGEST_INGEST = timedelta(minutes=15)
ABANDONED_AFTER = LONGEST_INGEST
_KEY = re.compile(r"[\x21-\x7e]{1,255}")


class KeyReused(Conflict):
    message = (
        "This Idempotency-Key was used for a different request (other parameters, format or"
        " body): a key names one request; use a new key for a new one"
    )


class KeyInFlight(Conflict):
    message = "A request with this Idempotency-Key is still being processed; retry shortly"

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "5"})


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def request_digest(fmt: str, params: Iterable[tuple[str, str]], body_sha256: bytes) -> bytes:
    """What a key binds: the whole request (format, every parameter, the body), so that the
    same key with another CallSid or format is refused rather than answered with the first
    request's recording. Parameters count in any order."""
    digest = hashlib.sha256(b"ingest\0" + fmt.encode() + b"\0")
    for name, value in sorted(params):
        for part in (name, value):
            encoded = part.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "big") + encoded)
    digest.update(b"\0" + body_sha256)
    return digest.digest()


def check_key(value: str) -> str:
    """The header's key, or a 400 for one no client would send."""
    if not _KEY.fullmatch(value):
        raise BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return value


async def claim(
    pool: Pool, account_sid: str, key: str, body_sha256: bytes, *, wait: float
) -> Answer | None:
    """None when this request is the key's first (answer it, then ``remember`` or ``release``);
    else the first request's answer, waited for up to ``wait`` seconds while it runs."""
    deadline = asyncio.get_running_loop().time() + wait
    delay = 0.05
    while True:
        now = datetime.now(UTC)
        held = await claim_key(
            pool,
            account_sid,
            key,
            body_sha256,
            stale_before=now - ABANDONED_AFTER,
            expired_before=now - KEEP_FOR,
        )
        if held is None:
            return None
        if held.body_sha256 != body_sha256:
            raise KeyReused()
        if held.state == "done":
            assert held.status is not None and held.content_type and held.body is not None
            return Answer(held.status, held.content_type, held.body)
        if asyncio.get_running_loop().time() >= deadline:
            raise KeyInFlight()
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.5)


async def remember(pool: Pool, account_sid: str, key: str, answer: Answer) -> None:
    """Keep the answer for the retries."""
    await answer_key(
        pool,
        account_sid,
        key,
        status=answer.status,
        content_type=answer.content_type,
        body=answer.body,
    )


async def release(pool: Pool, account_sid: str, key: str) -> None:
    """The first request failed: a retry runs afresh."""
    await release_key(pool, account_sid, key)
