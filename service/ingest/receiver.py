"""Receiving an upload's body: a long PCM WAV goes to storage as it arrives, anything else to disk.

The time of a large ingest is in storage's write, so it starts as soon as one part of the body is
in: while part N is being sent (and hashed on a thread), part N+1 is received. A WAV is
measured on the way (``WavScan``: the same check as at rest), so the recording's duration is
exact without ever holding, or writing out, the whole body. Memory stays flat: one part being
filled plus at most ``IN_FLIGHT`` being hashed and sent, whatever the length of the recording.

The streamed object is not visible before its owner completes it (``Received.streamed.write``):
an upload refused, replayed or cut short is aborted, and nothing is ever listed under its key.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio

from service.audio.probe import AudioInfo
from service.ingest.wavscan import WavScan
from service.recordings.objects import CONTENT_TYPES, object_key
from service.sids import new_sid
from storage.client import Storage
from storage.multipart import MultipartWrite

log = logging.getLogger(__name__)

# A part of the streamed upload, and the size below which a body is spooled and stored in one
# PUT instead. Nothing is sent before the first part is in, and the last is sent after the
# body's last byte, which favours small parts (S3's floor is 5 MiB); fewer requests favour large
# ones. With two parts in flight, 8 MiB keeps pace with storage (docs/performance.md).
PART_SIZE = 8 * 1024 * 1024
# Parts being hashed and sent at once, beside the one being filled: memory per streamed ingest
# is at most (1 + IN_FLIGHT) x PART_SIZE, 24 MiB, whatever the recording's length.
IN_FLIGHT = 2


@dataclass(frozen=True)
class Streamed:
    """A body already in storage as an unfinished multipart upload under the new recording's
    key, and what it measured."""

    sid: str
    write: MultipartWrite
    info: AudioInfo


@dataclass(frozen=True)
class Received:
    """A whole body, received: its size and SHA-256, and either the file it was spooled to or
    the upload it was streamed to."""

    size: int
    sha256: bytes
    path: Path | None = None
    streamed: Streamed | None = None

    async def discard(self) -> None:
        """Drop the streamed upload, unless it was completed (shielded, never raising)."""
        if self.streamed is not None:
            await self.streamed.write.abort()


class StreamSlots:
    """How many ingests of a process may stream at once (RECORDINGS_INGEST_MAX_STREAMED): each
    holds up to ``(1 + IN_FLIGHT) x PART_SIZE`` in memory, so past the limit a body is spooled
    to disk instead, and the memory of a burst of long uploads stays bounded. One event loop."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0

    def take(self) -> bool:
        """A slot if one is free (never waits: the other way is as good, only slower)."""
        if self.taken >= self.limit:
            return False
        self.taken += 1
        return True

    def give_back(self) -> None:
        self.taken -= 1


class _Parts:
    """Parts of a streamed upload, sent and hashed in order while the next ones arrive."""

    def __init__(self, write: MultipartWrite, digest: hashlib._Hash) -> None:
        self.write = write
        self._digest = digest
        self._slots = asyncio.Semaphore(IN_FLIGHT)
        self._hashed = asyncio.Event()
        self._hashed.set()
        self._number = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.failure: BaseException | None = None

    async def send(self, part: bytearray | memoryview) -> None:
        """Start sending ``part`` (left untouched from now on) as the next part; waits while
        ``IN_FLIGHT`` parts are still on their way."""
        await self._slots.acquire()
        if self.failure is not None:
            self._slots.release()
            raise self.failure
        self._number += 1
        previous, self._hashed = self._hashed, asyncio.Event()
        task = asyncio.create_task(self._send(self._number, part, previous, self._hashed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def finish(self) -> None:
        """Wait for every part; raises the first part's failure."""
        await asyncio.gather(*self._tasks)
        if self.failure is not None:
            raise self.failure

    async def cancel(self) -> None:
        """Stop sending (the upload is aborted next)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(
        self,
        number: int,
        part: bytearray | memoryview,
        previous: asyncio.Event,
        hashed: asyncio.Event,
    ) -> None:
        try:
            sending = asyncio.create_task(self.write.upload_part(number, part))
            try:
                # The digest takes the parts in order; hashlib lets go of the GIL meanwhile.
                await previous.wait()
                await anyio.to_thread.run_sync(self._digest.update, part)
                hashed.set()
            finally:
                if not hashed.is_set():
                    sending.cancel()
                await asyncio.wait([sending])
            sending.result()
        except Exception as exc:
            # Seen by the receiver at its next part or at the end: a failed part never cancels
            # the reading midway through a buffer.
            self.failure = self.failure or exc
        finally:
            self._slots.release()


def _write_and_hash(out: BinaryIO, digest: hashlib._Hash, data: bytearray | memoryview) -> None:
    out.write(data)
    digest.update(data)


async def receive(
    storage: Storage,
    account_sid: str,
    body: AsyncIterable[bytes],
    spool: Path,
    *,
    stream_size: int | None,
    slots: StreamSlots,
) -> Received:
    """Take in ``body``; spooled to ``spool``, unless ``stream_size`` (the body's announced
    size, when it may go to storage at once) is given, the body begins a PCM WAV of that size
    longer than a part and one of ``slots`` is free: then it is streamed to storage and
    measured on the way.

    Raises whatever ``body`` raises (a disconnect), OSError of the spool, StorageUnavailable;
    a streamed upload is aborted on every such exit.
    """
    digest = hashlib.sha256()
    scan = WavScan()
    buffer = bytearray(PART_SIZE)
    filled = 0
    parts: _Parts | None = None
    out: BinaryIO | None = None
    sid = new_sid("RE")
    slot = False
    try:
        async for chunk in body:
            view = memoryview(chunk)
            while view:
                # Coalesced into whole parts: one copy of each byte, however small the chunks.
                taken = min(len(view), PART_SIZE - filled)
                buffer[filled : filled + taken] = view[:taken]
                view = view[taken:]
                filled += taken
                if filled < PART_SIZE:
                    continue
                scan.feed(buffer)
                if parts is None and out is None:
                    if (
                        stream_size is not None
                        and scan.looks_like_pcm_wav(stream_size)
                        and (slot := slots.take())
                    ):
                        key = object_key(storage, account_sid, sid, "wav")
                        write = await storage.start_upload(key, CONTENT_TYPES["wav"])
                        parts = _Parts(write, digest)
                    else:
                        out = await anyio.to_thread.run_sync(spool.open, "wb")
                if parts is not None:
                    await parts.send(buffer)
                    # A new buffer rather than a copy of the part: the part is sent as it is.
                    buffer = bytearray(PART_SIZE)
                else:
                    assert out is not None
                    await anyio.to_thread.run_sync(_write_and_hash, out, digest, buffer)
                filled = 0
        last = memoryview(buffer)[:filled]
        scan.feed(last)
        if parts is None:
            if out is None:
                out = await anyio.to_thread.run_sync(spool.open, "wb")
            await anyio.to_thread.run_sync(_write_and_hash, out, digest, last)
            return Received(scan.received, digest.digest(), path=spool)
        if last:
            await parts.send(last)
        await parts.finish()
        info = scan.measure()
        if info is None:
            return await _read_back(storage, parts.write, scan.received, digest, spool)
        return Received(scan.received, digest.digest(), streamed=Streamed(sid, parts.write, info))
    except BaseException:
        if parts is not None:
            await parts.cancel()
            await parts.write.abort()
        raise
    finally:
        # Every part is sent (or abandoned) by now: nothing of the body is held any more.
        if slot:
            slots.give_back()
        if out is not None:
            await _close(out.close)


async def _close(close: Callable[[], None]) -> None:
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(close)


async def _read_back(
    storage: Storage, write: MultipartWrite, size: int, digest: hashlib._Hash, spool: Path
) -> Received:
    """A body that began as a PCM WAV but did not end as a consistent one (a chunk past the
    audio that overruns the file, say): rare, so it is read back from storage into the spool
    and takes the decoding path of any other upload, rather than being refused unread."""
    log.info("streamed upload %s is not a consistent PCM WAV: reading it back", write.key)
    await write.complete()
    try:
        with spool.open("wb") as out:
            async for chunk in storage.iter_object(write.key, 1024 * 1024):
                await anyio.to_thread.run_sync(out.write, chunk)
    finally:
        with anyio.CancelScope(shield=True):
            await storage.delete_objects([write.key])
    return Received(size, digest.digest(), path=spool)
