"""A whole import: each account's recordings listed page by page and copied by a bounded set of
workers, counted in a Summary. Memory holds one page and a short queue, whatever the size of
the account."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import asyncpg
import httpx

from db.accounts import fetch_account
from db.imports import fetch_present
from service.accounts.registry import NewAccount, create_account
from service.accounts.sealing import sealer_for
from service.imports.copier import Copy, check_fields, copy_recording, delete_copied_source
from service.imports.media import media_size
from service.imports.retries import SourceError, with_retries
from service.imports.source import SourceRecording, TwilioSource
from service.imports.summary import Summary
from service.services import Services
from storage.errors import StorageError

log = logging.getLogger(__name__)

# Work waits in a queue this many times the number of workers: enough that the next page's
# listing overlaps the copies, small enough that memory does not grow with the account.
QUEUE_DEPTH = 4
# Recordings counted as skipped carry why; these are the service's own reasons.
ALREADY_HERE = "already here"
DELETED_HERE = "deleted here"


@dataclass(frozen=True)
class Plan:
    """What the operator asked for, beyond the accounts."""

    concurrency: int = 8
    created_after: date | None = None
    created_before: date | None = None
    derive: bool = False
    dry_run: bool = False
    delete_source: bool = False
    keep_auth_token: bool = False


@dataclass(frozen=True)
class _Work:
    item: SourceRecording
    here: bool


async def ensure_account(
    services: Services, account_sid: str, auth_token: str | None, parent_sid: str | None = None
) -> NewAccount | None:
    """Create the local account of this SID when it is missing (with ``auth_token`` when the
    source's is kept, a subaccount of ``parent_sid`` when given); the new credentials, or None
    when it existed."""
    if await fetch_account(services.pool, account_sid) is not None:
        return None
    return await create_account(
        services.pool,
        "imported from Twilio",
        sealer=sealer_for(services.settings.secret_key),
        sid=account_sid,
        auth_token=auth_token,
        parent_sid=parent_sid,
    )


class Importer:
    """Copies recordings from one source into the service, as a Plan says."""

    def __init__(
        self,
        services: Services,
        source: TwilioSource,
        http: httpx.AsyncClient,
        plan: Plan,
        *,
        on_progress: Callable[[Summary], None] | None = None,
    ) -> None:
        self.services = services
        self.source = source
        self.http = http
        self.plan = plan
        self.summary = Summary()
        self._on_progress = on_progress or (lambda _summary: None)
        # Every request to the source (list pages, media, deletes) holds one of these.
        self._slots = asyncio.Semaphore(plan.concurrency)

    async def import_account(self, source_account: str, local_account: str) -> None:
        """Copy one source account's recordings into one local account."""
        # The queue itself is unbounded so that the workers' end marks never wait; ``room``
        # bounds the work in it.
        queue: asyncio.Queue[_Work | None] = asyncio.Queue()
        room = asyncio.Semaphore(self.plan.concurrency * QUEUE_DEPTH)
        copy = Copy(local_account, derive=self.plan.derive, delete_source=self.plan.delete_source)
        async with asyncio.TaskGroup() as tasks:
            workers = [
                tasks.create_task(self._work(queue, room, copy))
                for _ in range(self.plan.concurrency)
            ]
            try:
                await self._list(source_account, local_account, queue, room)
            finally:
                for _ in workers:
                    queue.put_nowait(None)

    async def _list(
        self,
        source_account: str,
        local_account: str,
        queue: asyncio.Queue[_Work | None],
        room: asyncio.Semaphore,
    ) -> None:
        pages = self.source.pages(
            source_account,
            created_after=self.plan.created_after,
            created_before=self.plan.created_before,
        )
        try:
            while True:
                async with self._slots:
                    page = await anext(pages, None)
                if page is None:
                    return
                present = await fetch_present(
                    self.services.pool, local_account, [item.sid for item in page]
                )
                for item in page:
                    if item.status != "completed":
                        self.summary.skipped[item.status] += 1
                        continue
                    here = present.get(item.sid)
                    if here is not None and here.deleted:
                        self.summary.skipped[DELETED_HERE] += 1
                        continue
                    if here is not None and not self.plan.delete_source:
                        # Its row is written only after its object is stored whole, with the
                        # size read from the source: the same SID here is the same recording.
                        self.summary.skipped[ALREADY_HERE] += 1
                        continue
                    await room.acquire()
                    queue.put_nowait(_Work(item, here is not None))
                self._on_progress(self.summary)
        except SourceError as exc:
            self.summary.fail(source_account, f"listing stopped: {exc.reason}")
        finally:
            await pages.aclose()

    async def _work(
        self, queue: asyncio.Queue[_Work | None], room: asyncio.Semaphore, copy: Copy
    ) -> None:
        while (work := await queue.get()) is not None:
            try:
                check_fields(work.item)
                async with self._slots:
                    await self._one(work, copy)
            except SourceError as exc:
                self.summary.fail(work.item.sid, exc.reason)
            except (StorageError, asyncpg.PostgresError, OSError) as exc:
                log.warning("import of %s failed: %s", work.item.sid, exc)
                self.summary.fail(work.item.sid, f"{type(exc).__name__}: {exc}")
            except Exception as exc:
                # One recording that breaks something unforeseen is a failure to list and
                # retry, not the end of a run over millions.
                log.warning("import of %s failed", work.item.sid, exc_info=True)
                self.summary.fail(work.item.sid, f"{type(exc).__name__}: {exc}")
            finally:
                room.release()
            self._on_progress(self.summary)

    async def _one(self, work: _Work, copy: Copy) -> None:
        item = work.item
        assert item.media_url is not None
        if self.plan.dry_run:
            size = await with_retries(
                lambda: media_size(self.http, item.media_url or "", self.source.auth, item.channels)
            )
            self.summary.copied += 1
            self.summary.bytes += size or 0
            return
        if work.here:
            await delete_copied_source(self.services, self.source, self.http, item, copy)
            self.summary.skipped[ALREADY_HERE] += 1
            self.summary.deleted_at_source += 1
            return
        fetched = await copy_recording(self.services, self.source, self.http, item, copy)
        if fetched is None:
            self.summary.skipped[ALREADY_HERE] += 1
            return
        self.summary.copied += 1
        self.summary.bytes += fetched.size
        if copy.delete_source:
            self.summary.deleted_at_source += 1
