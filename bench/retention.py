"""Retention: the list's latency while a pass deletes 100,000 expired recordings, against the
same list idle, in one run (target: p99 within 2x).

The listing account holds ``--live`` recordings inside its policy and ``--expired`` ones past
it (rows made in SQL, as bench/dataset.py makes them; their objects need not exist: a missing
object's delete is not an error). The service runs as `recordings serve`; the pass as
`recordings retention`, a process of its own, as the worker or an operator runs it. Clients
list the account's first page (2010 and 2008 faces, by turns) at a fixed concurrency, first
idle for ``--idle-seconds``, then for as long as the pass runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.stack import VENV_BIN, Stack, running_stack, service_process

DAYS = 30


async def _make_rows(stack: Stack, live: int, expired: int) -> None:
    now = datetime.now(UTC)
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute("SET session_replication_role = replica")  # FK and count triggers off
        for first, count, newest in (
            (0, expired, now - timedelta(days=DAYS + 1)),
            (expired, live, now - timedelta(minutes=1)),
        ):
            await conn.execute(
                "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
                " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
                " SELECT 'RE' || md5('ret-' || g), $1, 'CA' || md5('call-' || (g / 3)), 60,"
                " ts, ts, 8000, 1, $1 || '/RE' || md5('ret-' || g) || '.wav', 960044,"
                " '\"' || left(md5('etag-' || g), 40) || '\"'"
                " FROM (SELECT g, $4::timestamptz - make_interval(secs => (g - $2) * 10) AS ts"
                " FROM generate_series($2::bigint, $2::bigint + $3 - 1) g) s",
                stack.list_account_sid,
                first,
                count,
                newest,
                timeout=None,
            )
        # The triggers were off: the live counter as they would have kept it.
        await conn.execute(
            "INSERT INTO recording_counts (account_sid, live) SELECT $1, count(*) FROM recordings"
            " WHERE account_sid = $1 AND deleted_at IS NULL"
            " ON CONFLICT (account_sid) DO UPDATE SET live = EXCLUDED.live",
            stack.list_account_sid,
        )
        await conn.execute(
            "UPDATE accounts SET retention_days = $2 WHERE sid = $1", stack.list_account_sid, DAYS
        )
        await conn.execute("VACUUM ANALYZE recordings", timeout=None)
    finally:
        await conn.close()


async def _list_while(
    base: str, stack: Stack, concurrency: int, done: asyncio.Event
) -> list[float]:
    auth = (stack.list_account_sid, stack.list_auth_token)
    urls = [
        f"{base}/2010-04-01/Accounts/{stack.list_account_sid}/Recordings.json?PageSize=50",
        f"{base}/2008-08-01/Accounts/{stack.list_account_sid}/Recordings.json?PageSize=50",
    ]
    timings: list[float] = []

    async def client(n: int) -> None:
        async with httpx.AsyncClient(auth=auth, timeout=30) as http:
            i = n
            while not done.is_set():
                started = time.perf_counter()
                response = await http.get(urls[i % 2])
                timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
                i += 1

    await asyncio.gather(*(client(n) for n in range(concurrency)))
    return timings


async def _idle(base: str, stack: Stack, concurrency: int, seconds: float) -> list[float]:
    done = asyncio.Event()
    asyncio.get_running_loop().call_later(seconds, done.set)
    return await _list_while(base, stack, concurrency, done)


async def _during_pass(
    base: str, stack: Stack, concurrency: int, env: dict[str, str], cwd: Path
) -> tuple[list[float], dict[str, object], float]:
    done = asyncio.Event()
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        str(VENV_BIN / "recordings"),
        "retention",
        "--json",
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    async def wait() -> bytes:
        out, err = await proc.communicate()
        done.set()
        assert proc.returncode == 0, err.decode()
        return out

    timings, out = await asyncio.gather(_list_while(base, stack, concurrency, done), wait())
    return timings, json.loads(out), time.monotonic() - started


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--expired", type=int, default=100_000)
    parser.add_argument("--live", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4, help="listing clients")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)

    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.monotonic()
        asyncio.run(_make_rows(stack, args.live, args.expired))
        print(
            f"rows: {args.expired:,} expired + {args.live:,} live in one account"
            f" ({time.monotonic() - started:.1f} s to make)"
        )
        service = service_process(stack, workdir)
        service.env.update(RECORDINGS_LOG_LEVEL="WARNING", RECORDINGS_ACCESS_LOG="false")
        env = {**service.env, "RECORDINGS_RETENTION_BATCH_SIZE": str(args.batch_size)}
        with service:
            service.start()
            base = service.base_url
            asyncio.run(_idle(base, stack, args.concurrency, 3.0))  # warm up
            idle = asyncio.run(_idle(base, stack, args.concurrency, args.idle_seconds))
            during, report, wall = asyncio.run(
                _during_pass(base, stack, args.concurrency, env, workdir)
            )
            after = asyncio.run(_idle(base, stack, args.concurrency, args.idle_seconds / 2))

    deleted = int(str(report["deleted"]))
    print(
        f"pass: deleted {deleted:,} in {wall:.1f} s ({deleted / wall:,.0f}/s),"
        f" batches of {args.batch_size}"
    )
    print(f"{'list first page':<28}{'requests':>10}{'p50 ms':>10}{'p99 ms':>10}{'mean ms':>10}")
    for name, values in (("idle", idle), ("during the pass", during), ("idle after", after)):
        print(
            f"{name:<28}{len(values):>10}{_p(values, 0.5):>10.2f}{_p(values, 0.99):>10.2f}"
            f"{statistics.mean(values) * 1000:>10.2f}"
        )
    ratio = _p(during, 0.99) / _p(idle, 0.99)
    print(
        f"p99 during / idle: {ratio:.2f} (target <= 2.0); p50: "
        f"{_p(during, 0.5) / _p(idle, 0.5):.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
