"""The recordings every face reads and deletes: fetch, list a page, delete, purge."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

from db.pool import Pool
from db.recordings import (
    ListFilter,
    MediaLookup,
    Recording,
    count_recordings,
    fetch_media,
    list_recordings,
    purge_recording,
    tombstone_recording,
)
from service.errors import NotFound
from service.recordings.objects import recording_keys
from service.recordings.paging import NumberedPage, PageWindow
from service.sids import is_account_sid, is_recording_sid
from storage.client import Storage
from storage.errors import StorageError

log = logging.getLogger(__name__)


class RecordingNotFound(NotFound):
    message = "The requested resource was not found"


class PageNotFound(NotFound):
    def __init__(self, window: PageWindow) -> None:
        super().__init__(f"Page {window.page} is past the last page ({window.num_pages - 1})")


@dataclass(frozen=True)
class Catalog:
    """The recordings of every account, as the faces see them."""

    pool: Pool
    storage: Storage
    # Deleted recordings keep their objects this long before `recordings gc` purges them.
    keep_deleted_objects: bool = False

    async def fetch(self, account_sid: str, sid: str) -> MediaLookup:
        """A live recording of this account, with its account's media-auth facts."""
        if not is_account_sid(account_sid) or not is_recording_sid(sid):
            raise RecordingNotFound()
        found = await fetch_media(self.pool, account_sid, sid)
        if found is None:
            raise RecordingNotFound()
        return found

    async def list_page(
        self, account_sid: str, filters: ListFilter, *, page: int, page_size: int
    ) -> NumberedPage:
        """Page ``page`` of the account's live recordings, newest first; past the last is a 404."""
        total = await count_recordings(self.pool, account_sid, filters)
        window = PageWindow(page=page if total else 0, page_size=page_size, total=total)
        if not window.exists:
            raise PageNotFound(window)
        recordings = []
        if total:
            recordings = await list_recordings(
                self.pool, account_sid, filters, limit=page_size, offset=window.offset
            )
        return NumberedPage(recordings, window)

    async def delete(self, account_sid: str, sid: str) -> Recording:
        """Hide the recording at once, then remove its objects (or leave that to gc)."""
        if not is_recording_sid(sid):
            raise RecordingNotFound()
        recording = await tombstone_recording(self.pool, account_sid, sid)
        if recording is None:
            raise RecordingNotFound()
        if not self.keep_deleted_objects:
            await purge(self.pool, self.storage, recording, best_effort=True)
        return recording


async def purge(pool: Pool, storage: Storage, recording: Recording, *, best_effort: bool) -> bool:
    """Remove a tombstoned recording's objects, then its row; True when both are gone.

    With ``best_effort`` a storage failure
    is logged and left to `recordings gc`; without, it propagates.
    """
    try:
        await storage.delete_objects(recording_keys(storage, recording))
    except StorageError as exc:
        if not best_effort:
            raise
        log.warning("deleting the objects of %s failed, gc will retry: %s", recording.sid, exc)
        return False
    if best_effort:
        with contextlib.suppress(Exception):
            await purge_recording(pool, recording.sid)
    else:
        await purge_recording(pool, recording.sid)
    return True
