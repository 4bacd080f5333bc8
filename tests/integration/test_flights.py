"""Work done once per recording: a result handed over early, the rest finished under the lock,
and callers who all leave stopping the work, against a real PostgreSQL's advisory locks."""

from __future__ import annotations

import asyncio

import asyncpg

from db.pool import open_pool
from devstack.servers import EmbeddedPostgres
from service.audio.ffmpeg import FfmpegSlots
from service.flights import OncePerRecording, Unfinished, lock_key

SID = "RE" + "7f" * 16
LOCK_CLASS = 0x54455354  # "TEST"


class Busy(Exception):
    pass


def flights(pool: asyncpg.Pool) -> OncePerRecording[str]:
    return OncePerRecording(
        pool,
        FfmpegSlots(2, 2),
        lock_class=LOCK_CLASS,
        capacity=4,
        timeout=10,
        busy=Busy,
    )


async def lock_is_free(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        taken = await conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", LOCK_CLASS, lock_key(SID)
        )
        if taken:
            await conn.execute("SELECT pg_advisory_unlock($1, $2)", LOCK_CLASS, lock_key(SID))
        return bool(taken)
    finally:
        await conn.close()


async def nothing_settled(db: object) -> None:
    return None


def test_an_unfinished_result_is_given_at_once_and_its_rest_runs_on_under_the_lock(
    postgres: EmbeddedPostgres,
) -> None:
    async def scenario() -> None:
        async with open_pool(postgres.dsn) as pool:
            once = flights(pool)
            rest_may_end = asyncio.Event()
            rest_ended = asyncio.Event()

            async def rest() -> None:
                await rest_may_end.wait()
                rest_ended.set()

            async def make() -> Unfinished[str]:
                return Unfinished("made", rest())

            caller = asyncio.create_task(once.run(SID, nothing_settled, make))
            assert await asyncio.wait_for(caller, 10) == "made"
            # The caller has its result and is gone; the rest neither stops nor lets go.
            await asyncio.sleep(0.1)
            assert not rest_ended.is_set()
            assert once.inflight == 1
            assert not await lock_is_free(postgres.dsn)
            # A caller who comes meanwhile joins the same run's result.
            assert await once.run(SID, nothing_settled, make) == "made"
            rest_may_end.set()
            await asyncio.wait_for(rest_ended.wait(), 10)
            for _ in range(100):
                if once.inflight == 0:
                    break
                await asyncio.sleep(0.01)
            assert once.inflight == 0
            assert await lock_is_free(postgres.dsn)

    asyncio.run(scenario())


def test_work_whose_callers_all_left_stops_and_the_next_caller_starts_afresh(
    postgres: EmbeddedPostgres,
) -> None:
    async def scenario() -> None:
        async with open_pool(postgres.dsn) as pool:
            once = flights(pool)
            started = asyncio.Event()
            stopped = asyncio.Event()
            runs = 0

            async def slow() -> str:
                nonlocal runs
                runs += 1
                started.set()
                try:
                    await asyncio.sleep(60)
                finally:
                    stopped.set()
                return "never"

            caller = asyncio.create_task(once.run(SID, nothing_settled, slow))
            await asyncio.wait_for(started.wait(), 10)
            caller.cancel()

            # At once, before the abandoned run has even wound down, a new caller starts anew.
            async def quick() -> str:
                nonlocal runs
                runs += 1
                return "fresh"

            assert await asyncio.wait_for(once.run(SID, nothing_settled, quick), 10) == "fresh"
            assert stopped.is_set()
            assert runs == 2

    asyncio.run(scenario())
