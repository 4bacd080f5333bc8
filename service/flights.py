"""Work on a recording done once at a time, whoever asks and on whichever replica.

Making an MP3 or a waveform costs an ffmpeg run: within a process, callers of one recording
share one task (cancelled when the last of them leaves); across processes, a PostgreSQL advisory
lock lets one run while the others poll for the outcome; after winning the lock the outcome is
looked for again, since the last holder may just have made it. Every run takes one of the
process's ffmpeg slots.

A run may hand its callers a result before it is over (``Unfinished``): the MP3 is served from
its temporary file while it is being stored. The rest of the run then goes on under the same
lock and slot, and is no longer stopped when its callers leave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio

from db.pool import Db, Pool
from service.audio.ffmpeg import FfmpegBusy, FfmpegSlots

T = TypeVar("T")


def lock_key(sid: str) -> int:
    """32 bits of a SID as a signed int4; two recordings sharing them only take turns."""
    value = int(sid[2:10], 16)
    return value - (1 << 32) if value >= 1 << 31 else value


@dataclass(frozen=True)
class Unfinished(Generic[T]):
    """What ``make`` returns to give ``value`` to its callers at once, while ``rest`` runs on."""

    value: T
    rest: Awaitable[None]


@dataclass
class _Flight(Generic[T]):
    task: asyncio.Task[None]
    result: asyncio.Future[T]
    waiters: int = 0
    # Cancelled for want of callers: a caller who comes now starts a flight of its own.
    abandoned: bool = False


class OncePerRecording(Generic[T]):
    """One kind of work (``lock_class`` tells kinds apart in the advisory locks' key space)."""

    def __init__(
        self,
        pool: Pool,
        slots: FfmpegSlots,
        *,
        lock_class: int,
        capacity: int,
        timeout: float,
        busy: Callable[[], Exception],
        locks: Pool | None = None,
    ) -> None:
        self._pool = pool
        # The lock is held across the run's transactions: a connection that keeps its session
        # (PostgreSQL itself, not a transaction pooler's), the pool's own by default.
        self._locks = pool if locks is None else locks
        self._slots = slots
        self._lock_class = lock_class
        # Recordings being worked on or waited for here at most; past it ``busy`` is raised.
        self._capacity = capacity
        # A wait for another process's run gives up (``busy``) this long after the run's timeout.
        self._timeout = timeout
        self._busy = busy
        self._inflight: dict[str, _Flight[T]] = {}

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    async def run(
        self,
        sid: str,
        settled: Callable[[Db], Awaitable[T | None]],
        make: Callable[[], Awaitable[T | Unfinished[T]]],
    ) -> T:
        """What ``settled`` finds once the work is done (``make`` does it, at most once at a
        time); ``settled`` returns None while there is nothing yet, and raises for failures."""
        flight = self._inflight.get(sid)
        if flight is None or flight.abandoned:
            if len(self._inflight) >= self._capacity:
                raise self._busy()
            result: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._fly(sid, settled, make, result))
            flight = _Flight(task, result)
            self._inflight[sid] = flight
            task.add_done_callback(lambda done: self._forget(sid, done, result))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.result)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.result.done():
                # Everyone who wanted it has gone: stop ffmpeg rather than finish for nobody.
                flight.abandoned = True
                flight.task.cancel()

    def _forget(self, sid: str, task: asyncio.Task[None], result: asyncio.Future[T]) -> None:
        if (flight := self._inflight.get(sid)) is not None and flight.task is task:
            del self._inflight[sid]
        if not result.done():
            result.cancel()
        elif not result.cancelled():
            result.exception()  # retrieved here, so an abandoned failure is not reported as lost
        if not task.cancelled():
            task.exception()

    async def _fly(
        self,
        sid: str,
        settled: Callable[[Db], Awaitable[T | None]],
        make: Callable[[], Awaitable[T | Unfinished[T]]],
        result: asyncio.Future[T],
    ) -> None:
        """Run the work into ``result``, which an unfinished run fills before its rest."""
        try:
            value = await self._produce(sid, settled, make, result.set_result)
        except Exception as exc:
            if result.done():
                raise  # the rest failed; its callers had their result (and it logs its own)
            result.set_exception(exc)
            return
        if not result.done():
            result.set_result(value)

    async def _produce(
        self,
        sid: str,
        settled: Callable[[Db], Awaitable[T | None]],
        make: Callable[[], Awaitable[T | Unfinished[T]]],
        publish: Callable[[T], None],
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout + 60
        delay = 0.02
        key = lock_key(sid)
        while True:
            async with self._turn(), self._locks.acquire() as conn:
                if await conn.fetchval(
                    "SELECT pg_try_advisory_lock($1, $2)", self._lock_class, key
                ):
                    try:
                        current = await settled(conn)
                        if current is not None:
                            return current
                        made = await make()
                        if not isinstance(made, Unfinished):
                            return made
                        publish(made.value)
                        # Under the lock still: another replica would otherwise make it again.
                        await made.rest
                        return made.value
                    finally:
                        with anyio.CancelScope(shield=True), contextlib.suppress(Exception):
                            await conn.execute(
                                "SELECT pg_advisory_unlock($1, $2)", self._lock_class, key
                            )
            # Another process holds the lock and is at work: look again shortly.
            current = await settled(self._pool)
            if current is not None:
                return current
            if loop.time() > deadline:
                raise self._busy()
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    @contextlib.asynccontextmanager
    async def _turn(self) -> AsyncIterator[None]:
        """One of the process's ffmpeg slots, or ``busy`` when too many runs wait for one."""
        try:
            async with self._slots.slot():
                yield
        except FfmpegBusy as exc:
            raise self._busy() from exc
