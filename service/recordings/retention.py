"""Retention: delete the recordings older than their account's policy, as a DELETE would.

A pass goes account by account, oldest first, in small transactions (db.retention.expire_batch):
each tombstones a batch and drops its pending callbacks in one statement, then the batch's
objects are removed. A crash between the two leaves tombstones that still own objects; the
pass ends by removing those (gc's first step), so the next pass finishes what a crash cut short.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from db.errors import is_unavailable
from db.listing import Key
from db.pool import Pool
from db.recordings import Recording
from db.retention import (
    Policy,
    claim_scheduled_pass,
    database_now,
    expire_batch,
    finish_scheduled_pass,
    list_policies,
    mark_all_media_purged,
    try_lock,
    unlock,
)
from service.metrics import Metrics
from service.recordings.gc import purge_tombstones
from service.recordings.objects import recording_keys
from service.settings import Settings
from storage.client import Storage
from storage.errors import StorageError

log = logging.getLogger(__name__)

# The scheduled loop looks at least this often whether a pass is due (an interval shorter than
# this is looked at every interval).
MAX_POLL_SECONDS = 60.0


@dataclass
class AccountReport:
    account_sid: str
    days: int
    # Whether the policy is the account's own (else RECORDINGS_RETENTION_DAYS).
    own: bool
    cutoff: datetime
    deleted: int = 0


@dataclass
class RetentionReport:
    accounts: list[AccountReport] = field(default_factory=list)
    # Tombstones whose objects were still stored (a pass or a DELETE cut short), removed now.
    leftovers_purged: int = 0
    seconds: float = 0.0
    # False when the pass was stopped (worker shutdown) before it was done.
    complete: bool = True

    @property
    def deleted(self) -> int:
        return sum(account.deleted for account in self.accounts)

    def as_json(self) -> dict[str, object]:
        return {
            "deleted": self.deleted,
            "leftovers_purged": self.leftovers_purged,
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
            "accounts": [
                {
                    "account_sid": a.account_sid,
                    "retention_days": a.days,
                    "policy": "account" if a.own else "default",
                    "cutoff": a.cutoff.isoformat(),
                    "deleted": a.deleted,
                }
                for a in self.accounts
            ],
        }


@dataclass(frozen=True)
class Retention:
    """One service's retention passes, with what they need to delete as Catalog.delete does."""

    pool: Pool
    storage: Storage
    metrics: Metrics
    default_days: int | None
    batch_size: int = 500
    pause_ratio: float = 1.0
    # RECORDINGS_DELETED_RETENTION_SECONDS: deleted recordings' objects stay this long for gc.
    keep_deleted_objects: timedelta = timedelta(0)

    async def run_pass(
        self,
        *,
        accounts: list[str] | None = None,
        now: datetime | None = None,
        stop: asyncio.Event | None = None,
    ) -> RetentionReport:
        """One pass over every account with a policy (only ``accounts``, when given), measuring
        age from ``now`` (the database's clock unless given)."""
        started = time.monotonic()
        report = RetentionReport()
        now = now or await database_now(self.pool)
        for policy in await list_policies(self.pool, self.default_days, accounts):
            if stop is not None and stop.is_set():
                break
            report.accounts.append(await self._expire(policy, now, stop))
        report.complete = stop is None or not stop.is_set()
        if report.complete:
            report.leftovers_purged = await purge_tombstones(
                self.pool, self.storage, retention=self.keep_deleted_objects
            )
        report.seconds = time.monotonic() - started
        self.metrics.retention_pass_seconds.observe(report.seconds)
        log.info(
            "retention pass: deleted %d recordings of %d accounts in %.1f s%s",
            report.deleted,
            len(report.accounts),
            report.seconds,
            "" if report.complete else " (stopped; the next pass goes on)",
            extra={"retention_deleted": report.deleted},
        )
        return report

    async def _expire(
        self, policy: Policy, now: datetime, stop: asyncio.Event | None
    ) -> AccountReport:
        done = AccountReport(
            policy.account_sid, policy.days, policy.own, now - timedelta(days=policy.days)
        )
        after: Key | None = None
        while stop is None or not stop.is_set():
            started = time.monotonic()
            batch = await expire_batch(
                self.pool,
                policy.account_sid,
                cutoff=done.cutoff,
                after=after,
                limit=self.batch_size,
            )
            if not batch:
                break
            after = Key(batch[-1].date_created, batch[-1].sid)
            done.deleted += len(batch)
            self.metrics.retention_deleted.inc(len(batch))
            if not self.keep_deleted_objects:
                await self._remove_objects(batch)
            await self._rest((time.monotonic() - started) * self.pause_ratio, stop)
        return done

    @staticmethod
    async def _rest(seconds: float, stop: asyncio.Event | None) -> None:
        if seconds <= 0:
            return
        if stop is None:
            await asyncio.sleep(seconds)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def _remove_objects(self, batch: list[Recording]) -> None:
        """What Catalog.delete does after its tombstone, for a batch in one storage call."""
        keys = [key for recording in batch for key in recording_keys(self.storage, recording)]
        try:
            await self.storage.delete_objects(keys)
        except StorageError as exc:
            log.warning("retention: removing %d objects failed, left for later: %s", len(keys), exc)
            return
        await mark_all_media_purged(self.pool, [(r.account_sid, r.sid) for r in batch])


def retention_for(pool: Pool, storage: Storage, metrics: Metrics, settings: Settings) -> Retention:
    """The service's retention, as its settings say."""
    return Retention(
        pool,
        storage,
        metrics,
        default_days=settings.retention_days,
        batch_size=settings.retention_batch_size,
        pause_ratio=settings.retention_pause_ratio,
        keep_deleted_objects=timedelta(seconds=settings.deleted_retention_seconds),
    )


async def scheduled_pass(
    retention: Retention,
    interval_seconds: float,
    stop: asyncio.Event | None = None,
    *,
    locks: Pool | None = None,
) -> RetentionReport | None:
    """Run a pass if none ran in the last interval and no replica is running one; None if not.

    The advisory lock keeps passes of several replicas from overlapping; the schedule's row
    keeps them to one per interval between them. The lock's connection keeps its session for
    the whole pass: one of ``locks`` (PostgreSQL itself), else of the retention's pool.
    """
    async with (locks or retention.pool).acquire() as conn:
        if not await try_lock(conn):
            return None
        try:
            if not await claim_scheduled_pass(conn, interval_seconds):
                return None
            report = await retention.run_pass(stop=stop)
            if report.complete:
                await finish_scheduled_pass(conn)
            return report
        finally:
            with contextlib.suppress(Exception):
                # A broken connection has lost the lock with it.
                await unlock(conn)


async def run_retention(
    pool: Pool,
    storage: Storage,
    metrics: Metrics,
    settings: Settings,
    stop: asyncio.Event,
    *,
    locks: Pool | None = None,
) -> None:
    """The worker's schedule: a pass every RECORDINGS_RETENTION_INTERVAL_SECONDS, across all
    replicas, until ``stop`` is set; the pass's lock is held on a connection of ``locks``
    (PostgreSQL itself, past any transaction pooler). PostgreSQL or S3 going away only skips a
    turn."""
    retention = retention_for(pool, storage, metrics, settings)
    interval = settings.retention_interval_seconds
    while not stop.is_set():
        try:
            await scheduled_pass(retention, interval, stop, locks=locks)
        except Exception as exc:
            if not (is_unavailable(exc) or isinstance(exc, StorageError)):
                raise
            log.warning("retention pass cut short (%s); the next one goes on", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), min(interval, MAX_POLL_SECONDS))
