"""Garbage collection: remove deleted recordings' objects, forget their rows after the
soft-delete window, remove objects no row references, and forget what is only history (used
idempotency keys, settled status callbacks)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from db.callbacks import forget_settled
from db.ingest_keys import KEEP_FOR, forget_keys
from db.pool import Pool
from db.tombstones import existing_recordings, forget_tombstones, list_tombstones
from service.ingest.idempotency import LONGEST_INGEST
from service.recordings.catalog import SOFT_DELETE_RETENTION, remove_objects
from service.recordings.objects import parse_key
from storage.client import Storage, StoredObject

log = logging.getLogger(__name__)


@dataclass
class GcReport:
    # Deleted recordings whose objects this pass removed, and rows it forgot.
    purged_recordings: int = 0
    forgotten_recordings: int = 0
    orphans_removed: int = 0
    objects_scanned: int = 0
    uploads_aborted: int = 0
    keys_forgotten: int = 0
    callbacks_forgotten: int = 0


async def purge_tombstones(pool: Pool, storage: Storage, *, retention: timedelta) -> int:
    """Remove the objects of recordings deleted more than ``retention`` ago that still have
    them (kept by RECORDINGS_DELETED_RETENTION_SECONDS, or a removal a crash cut short)."""
    purged = 0
    cutoff = datetime.now(UTC) - retention
    while batch := await list_tombstones(pool, older_than=cutoff, limit=500):
        for recording in batch:
            await remove_objects(pool, storage, recording, best_effort=False)
            purged += 1
    return purged


async def forget_deleted(pool: Pool, *, retention: timedelta) -> int:
    """Delete the rows of recordings deleted more than ``retention`` ago whose objects are gone:
    the end of the soft-delete window."""
    forgotten = 0
    cutoff = datetime.now(UTC) - retention
    while count := await forget_tombstones(pool, deleted_before=cutoff, limit=1000):
        forgotten += count
    return forgotten


async def remove_orphans(pool: Pool, storage: Storage, *, grace: timedelta) -> tuple[int, int]:
    """Delete objects older than ``grace`` that no row points at; returns (scanned, removed)."""
    cutoff = datetime.now(UTC) - grace
    scanned = removed = 0
    batch: list[tuple[StoredObject, tuple[str, str]]] = []

    async def flush() -> int:
        if not batch:
            return 0
        known = await existing_recordings(pool, sorted({owner for _, owner in batch}))
        doomed = [obj.key for obj, owner in batch if owner not in known]
        if doomed:
            await storage.delete_objects(doomed)
            log.info("removed %d orphaned objects", len(doomed))
        batch.clear()
        return len(doomed)

    async for obj in storage.list_objects():
        scanned += 1
        name = parse_key(storage, obj.key)
        # Only keys this service writes are considered; anything else in the bucket is left
        # alone. The grace period covers uploads whose row is not inserted yet.
        if name is None or obj.last_modified > cutoff:
            continue
        batch.append((obj, (name.account_sid, name.sid)))
        if len(batch) >= 500:
            removed += await flush()
    removed += await flush()
    return scanned, removed


async def abort_stale_uploads(
    storage: Storage, *, grace: timedelta, youngest: timedelta = LONGEST_INGEST
) -> int:
    """Abort multipart uploads older than ``grace``: an ingest cut off mid-upload leaves them.

    Never one younger than the longest an ingest may take, whatever the grace: aborting it
    would fail an ingest that is still running (``--grace 0`` beside live uploads).
    """
    cutoff = datetime.now(UTC) - max(grace, youngest)
    stale = [
        (key, upload_id)
        async for key, upload_id, started in storage.list_unfinished_uploads()
        if started <= cutoff
    ]
    for key, upload_id in stale:
        await storage.abort_upload(key, upload_id)
    return len(stale)


async def forget_callbacks(pool: Pool, *, history: timedelta, batch: int = 1000) -> int:
    """Forget delivered and failed callbacks last touched more than ``history`` ago, in short
    transactions (the callbacks table is the workers' queue too)."""
    cutoff = datetime.now(UTC) - history
    forgotten = 0
    while gone := await forget_settled(pool, older_than=cutoff, limit=batch):
        forgotten += gone
    return forgotten


async def collect_garbage(
    pool: Pool,
    storage: Storage,
    *,
    grace: timedelta,
    retention: timedelta = timedelta(0),
    soft_delete_retention: timedelta = SOFT_DELETE_RETENTION,
    callback_history: timedelta = timedelta(days=30),
    upload_youngest: timedelta = LONGEST_INGEST,
) -> GcReport:
    """One full pass: deleted recordings' objects, then their rows, then orphans."""
    report = GcReport()
    report.purged_recordings = await purge_tombstones(pool, storage, retention=retention)
    report.forgotten_recordings = await forget_deleted(pool, retention=soft_delete_retention)
    report.objects_scanned, report.orphans_removed = await remove_orphans(
        pool, storage, grace=grace
    )
    report.uploads_aborted = await abort_stale_uploads(
        storage, grace=grace, youngest=upload_youngest
    )
    report.keys_forgotten = await forget_keys(pool, older_than=datetime.now(UTC) - KEEP_FOR)
    report.callbacks_forgotten = await forget_callbacks(pool, history=callback_history)
    return report
