"""The recordings every face reads and deletes: fetch, list a page, delete, purge."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from db.accounts import Account
from db.listing import Key, ListFilter, count_recordings, list_recordings, list_recordings_from
from db.pool import Pool
from db.recordings import MediaLookup, Recording, fetch_media, fetch_recording, tombstone_recording
from db.tombstones import mark_media_purged
from service.errors import NotFound
from service.recordings.cursors import Cursor, decode_page_token, encode_page_token
from service.recordings.objects import recording_keys
from service.recordings.paging import NumberedPage, PageWindow, TokenPage
from service.sids import is_account_sid, is_recording_sid
from storage.client import Storage
from storage.errors import StorageError

log = logging.getLogger(__name__)


class RecordingNotFound(NotFound):
    message = "The requested resource was not found"


class PageNotFound(NotFound):
    def __init__(self, window: PageWindow) -> None:
        super().__init__(f"Page {window.page} is past the last page ({window.num_pages - 1})")


SOFT_DELETE_RETENTION = timedelta(days=40)


@dataclass(frozen=True)
class Catalog:
    """The recordings of every account, as the faces see them."""

    pool: Pool
    storage: Storage
    # Deleted recordings keep their objects this long before `recordings gc` purges them.
    keep_deleted_objects: bool = False
    # Deleted recordings' metadata stays visible (IncludeSoftDeleted) this long; never media.
    soft_delete_retention: timedelta = SOFT_DELETE_RETENTION

    async def fetch(self, account_sid: str, sid: str) -> MediaLookup:
        """A live recording of this account, with its account's media-auth facts."""
        found = await self.find(account_sid, sid)
        if found is None:
            raise RecordingNotFound()
        return found

    async def find(self, account_sid: str, sid: str) -> MediaLookup | None:
        """``fetch``, or None where it would answer 404."""
        if not is_account_sid(account_sid) or not is_recording_sid(sid):
            return None
        return await fetch_media(self.pool, account_sid, sid)

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

    async def fetch_metadata(
        self,
        account_sid: str,
        sid: str,
        *,
        call_sid: str | None = None,
        conference_sid: str | None = None,
        include_deleted: bool = False,
    ) -> Recording:
        """A recording's metadata (of that call or conference, if given); soft-deleted ones on
        request."""
        if not is_recording_sid(sid):
            raise RecordingNotFound()
        since = self._deleted_since() if include_deleted else None
        recording = await fetch_recording(self.pool, account_sid, sid, deleted_since=since)
        if (
            recording is None
            or (call_sid is not None and recording.call_sid != call_sid)
            or (conference_sid is not None and recording.conference_sid != conference_sid)
        ):
            raise RecordingNotFound()
        return recording

    async def list_by_token(
        self,
        account: Account,
        filters: ListFilter,
        *,
        page: int,
        page_size: int,
        page_token: str | None,
        include_deleted: bool = False,
    ) -> TokenPage:
        """A page of the account's recordings, newest first, from a PageToken or from the top.

        Without a token, page ``page`` is read by offset (what a client asking for a page number
        gets); with one, from the token's place, at the cost of a first page however deep.
        """
        if include_deleted:
            filters = replace(filters, deleted_since=self._deleted_since())
        cursor = None
        if page_token:
            cursor = decode_page_token(account.token_salt, account.sid, page_token)
        rows, more_before, more_after = await self._read(
            account.sid, filters, cursor, page * page_size, page_size
        )

        def token(recording: Recording, backward: bool) -> str:
            key = Key(recording.date_created, recording.sid)
            return encode_page_token(account.token_salt, account.sid, Cursor(key, backward))

        return TokenPage(
            recordings=rows,
            page=page,
            page_size=page_size,
            next_token=token(rows[-1], False) if rows and more_after else None,
            previous_token=token(rows[0], True) if rows and more_before else None,
        )

    async def delete(self, account_sid: str, sid: str) -> Recording:
        """Tombstone the recording (its metadata stays for the soft-delete window), then remove
        its objects at once (or leave that to gc when deleted objects are kept a while)."""
        if not is_recording_sid(sid):
            raise RecordingNotFound()
        recording = await tombstone_recording(self.pool, account_sid, sid)
        if recording is None:
            raise RecordingNotFound()
        if not self.keep_deleted_objects:
            await remove_objects(self.pool, self.storage, recording, best_effort=True)
        return recording

    async def _read(
        self, account_sid: str, filters: ListFilter, cursor: Cursor | None, offset: int, size: int
    ) -> tuple[list[Recording], bool, bool]:
        """A page's rows, and whether rows come before it and after it."""
        if cursor is not None and cursor.backward:
            rows = await list_recordings_from(
                self.pool, account_sid, filters, limit=size + 1, before=cursor.key
            )
            if len(rows) > size:
                return rows[1:], True, True
            # The newest rows were reached: the page before is the first page, whole.
            cursor, offset = None, 0
        if cursor is not None:
            offset = 0
        rows = await list_recordings_from(
            self.pool,
            account_sid,
            filters,
            limit=size + 1,
            after=cursor.key if cursor is not None else None,
            offset=offset,
        )
        return rows[:size], cursor is not None or offset > 0, len(rows) > size

    def _deleted_since(self) -> datetime:
        return datetime.now(UTC) - self.soft_delete_retention


async def remove_objects(
    pool: Pool, storage: Storage, recording: Recording, *, best_effort: bool
) -> bool:
    """Remove a tombstoned recording's objects, then note that on its row; True when gone.

    The row itself stays (soft delete) until `recordings gc` forgets it. With ``best_effort`` a
    storage failure is logged and left to gc; without, it propagates.
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
            await mark_media_purged(pool, recording.account_sid, recording.sid)
    else:
        await mark_media_purged(pool, recording.account_sid, recording.sid)
    return True
