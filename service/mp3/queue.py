"""The MP3 job queue: pgqueuer's tables in our PostgreSQL, one queued job per recording."""

from __future__ import annotations

import asyncpg
from pgqueuer.queries import Queries

from db.migrations import take_migration_lock
from db.pool import Pool

MP3_ENTRYPOINT = "recordings.mp3"


async def install_queue(dsn: str) -> bool:
    """Create or upgrade pgqueuer's tables; True when they were created."""
    conn = await asyncpg.connect(dsn)
    try:
        # The migrations' lock: replicas running `recordings migrate` at once take turns here.
        await take_migration_lock(conn)
        queries = Queries.from_asyncpg_connection(conn)
        if not await queries.has_table(queries.qbe.settings.queue_table):
            await queries.install()
            return True
        await queries.upgrade()
        return False
    finally:
        await conn.close()


def job_payload(account_sid: str, sid: str) -> bytes:
    """A job's payload: the recording's account and SID, so the job's queries carry both."""
    return f"{account_sid}/{sid}".encode()


def parse_payload(payload: bytes) -> tuple[str, str] | None:
    """The account and SID of a job's payload; None for a job queued by a release that sent
    the SID alone (its MP3 or peaks are then made on their first request)."""
    account_sid, _, sid = payload.decode().partition("/")
    return (account_sid, sid) if sid else None


async def enqueue_mp3(
    pool: Pool, account_sid: str, sid: str, *, request_id: str | None = None
) -> None:
    """Ask the workers for this recording's MP3; the dedupe key keeps one job per recording."""
    await Queries.from_asyncpg_pool(pool).enqueue(
        MP3_ENTRYPOINT,
        job_payload(account_sid, sid),
        dedupe_key=f"mp3:{sid}",
        headers={"request_id": request_id} if request_id else None,
        on_conflict="skip",
    )


async def queue_depth(pool: Pool) -> int:
    """Jobs waiting or running, of every kind (they share the workers' ffmpeg slots)."""
    return sum((await queue_depths(pool)).values())


async def queue_depths(pool: Pool) -> dict[str, int]:
    """Jobs waiting or running, by entrypoint (MP3s, peaks)."""
    depths: dict[str, int] = {}
    for stats in await Queries.from_asyncpg_pool(pool).queue_size():
        depths[stats.entrypoint] = depths.get(stats.entrypoint, 0) + stats.count
    return depths
