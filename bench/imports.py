"""``python -m bench.imports``: `recordings import-twilio` throughput against a plain copy of the
same media at the same concurrency, in one run (target: ratio >= 0.6).

The source is `recordings serve` on the embedded stack, holding ``--recordings`` one-minute
recordings (8 kHz mono, 960 KB each: rows made in SQL, objects put straight into its bucket).
The destination is a second database on the same PostgreSQL server and a second bucket on the
same S3 server, as an operator's new deployment would be.

- baseline: the same listing through the 2010 API, then each recording's media downloaded
  whole with httpx and PUT with the project's own S3 client, ``--concurrency`` at a time;
- import: `recordings import-twilio --api-url SOURCE --concurrency N --json`, its own
  ``seconds`` (and the process's wall time, start-up included, beside it), and its peak RSS,
  which should not grow with ``--recordings``.

Each runs twice, by turns (copy, import, copy, import; each import into a destination of its
own), and the faster run of each is compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench.audio import make_wav
from bench.stack import VENV_BIN, ServerProcess, Stack, running_stack
from db.migrations import apply_migrations
from devstack.servers import free_port
from service.mp3.queue import install_queue
from service.services import storage_config
from service.settings import settings_env
from storage.client import open_storage

# Two destinations, one per import run: a second run into the first would skip everything.
DESTINATIONS = (
    ("imported_a", "recordings-bench-imported-a"),
    ("imported_b", "recordings-bench-imported-b"),
)
BASELINE_BUCKET = "recordings-bench-copied"
TARGET = 0.6


async def _make_source(stack: Stack, wav: Path, count: int) -> None:
    """``count`` recordings of the media account, each with its own copy of the minute."""
    data = wav.read_bytes()
    settings = stack.settings()
    conn = await asyncpg.connect(stack.dsn)
    try:
        rows = await conn.fetch(
            "INSERT INTO recordings (sid, account_sid, call_sid, duration, date_created,"
            " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag)"
            " SELECT 'RE' || md5('imp-' || g), $1, 'CA' || md5('call-' || g), 60,"
            " now() - make_interval(secs => g), now() - make_interval(secs => g), 8000, 1,"
            " $1 || '/RE' || md5('imp-' || g) || '.wav', $2, '\"' || md5('e' || g) || '\"'"
            " FROM generate_series(1, $3) g RETURNING wav_key",
            stack.account_sid,
            len(data),
            count,
        )
    finally:
        await conn.close()
    async with open_storage(storage_config(settings)) as storage:
        semaphore = asyncio.Semaphore(16)

        async def put(key: str) -> None:
            async with semaphore:
                await storage.put_bytes(key, data, "audio/x-wav")

        await asyncio.gather(*(put(storage.key(row["wav_key"])) for row in rows))


async def _make_destination(stack: Stack, database: str, bucket: str) -> str:
    conn = await asyncpg.connect(stack.dsn)
    try:
        await conn.execute(f"CREATE DATABASE {database}")
    finally:
        await conn.close()
    dsn = stack.dsn.rsplit("/", 1)[0] + "/" + database
    await apply_migrations(dsn)
    await install_queue(dsn)
    for name in (bucket, BASELINE_BUCKET):
        async with open_storage(storage_config(stack.settings(s3_bucket=name))) as storage:
            await storage.ensure_bucket()
    return dsn


async def _plain_copy(stack: Stack, base: str, concurrency: int) -> tuple[int, int, float]:
    """List, download and PUT every recording: (recordings, bytes, seconds)."""
    auth = (stack.account_sid, stack.auth_token)
    started = time.perf_counter()
    copied = size = 0
    async with (
        httpx.AsyncClient(auth=auth, timeout=60) as http,
        open_storage(storage_config(stack.settings(s3_bucket=BASELINE_BUCKET))) as storage,
    ):
        semaphore = asyncio.Semaphore(concurrency)

        async def copy(item: dict[str, str]) -> None:
            nonlocal copied, size
            async with semaphore:
                body = (await http.get(item["media_url"])).content
                await storage.put_bytes(storage.key(f"{item['sid']}.wav"), body, "audio/x-wav")
                copied += 1
                size += len(body)

        url: str | None = f"/2010-04-01/Accounts/{stack.account_sid}/Recordings.json?PageSize=1000"
        tasks = []
        while url:
            page = (await http.get(base + url)).json()
            tasks += [asyncio.create_task(copy(item)) for item in page["recordings"]]
            url = page["next_page_uri"]
        await asyncio.gather(*tasks)
    return copied, size, time.perf_counter() - started


def _import(
    stack: Stack, dest: tuple[str, str], base: str, concurrency: int, cwd: Path
) -> dict[str, float]:
    env = settings_env(stack.settings(database_url=dest[0], s3_bucket=dest[1]))
    env.update(
        TWILIO_ACCOUNT_SID=stack.account_sid,
        TWILIO_AUTH_TOKEN=stack.auth_token,
        RECORDINGS_TMP_DIR=str(stack.root / "tmp"),
        RECORDINGS_LOG_LEVEL="WARNING",
    )
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(VENV_BIN / "recordings"),
            "import-twilio",
            "--api-url",
            base,
            "--concurrency",
            str(concurrency),
            "--json",
        ],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    # The largest resident set of the children waited for so far: the import is the only one.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if result.returncode != 0:
        raise RuntimeError(f"import-twilio failed: {result.stderr}")
    summary: dict[str, float] = json.loads(result.stdout)
    summary["wall"] = wall
    summary["peak_rss_mb"] = peak_kib / 1024
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.imports", description=__doc__)
    parser.add_argument("--recordings", type=int, default=50, help="1000 for the full figure")
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)

    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wav = make_wav(workdir / "minute.wav", 60)
        asyncio.run(_make_source(stack, wav, args.recordings))
        dests = [
            (asyncio.run(_make_destination(stack, database, bucket)), bucket)
            for database, bucket in DESTINATIONS
        ]
        port = free_port()
        argv_serve = [str(VENV_BIN / "recordings"), "serve", "--host", "127.0.0.1"]
        env = stack.service_env(
            RECORDINGS_PUBLIC_URL=f"http://127.0.0.1:{port}",
            RECORDINGS_LOG_LEVEL="WARNING",
            RECORDINGS_ACCESS_LOG="false",
        )
        source = ServerProcess(
            "source", [*argv_serve, "--port", str(port)], port=port, env=env, cwd=workdir
        )
        with source:
            source.start()
            # Each side runs twice, by turns, and its faster run counts: the first pays for a
            # cold source, and a machine shared with other work is not equally busy throughout.
            copies, imports = [], []
            for dest in dests:
                copies.append(asyncio.run(_plain_copy(stack, source.base_url, args.concurrency)))
                imports.append(_import(stack, dest, source.base_url, args.concurrency, workdir))
            copied, size, seconds = min(copies, key=lambda run: run[2])
            summary = min(imports, key=lambda run: run["seconds"])

    if summary["copied"] != args.recordings or copied != args.recordings:
        raise RuntimeError(f"copied {summary['copied']} and {copied} of {args.recordings}")
    base_rate, import_rate = copied / seconds, summary["copied"] / summary["seconds"]
    print(f"{args.recordings} one-minute recordings, --concurrency {args.concurrency}")
    print(f"{'':<28}{'seconds':>9}{'rec/s':>9}{'MB/s':>9}")
    print(
        f"{'plain copy (GET, then PUT)':<28}{seconds:>9.2f}{base_rate:>9.1f}{size / 1e6 / seconds:>9.1f}"
    )
    print(
        f"{'recordings import-twilio':<28}{summary['seconds']:>9.2f}{import_rate:>9.1f}"
        f"{summary['bytes'] / 1e6 / summary['seconds']:>9.1f}"
        f"   (process wall time {summary['wall']:.2f} s, start-up included)"
    )
    print(f"import-twilio peak RSS: {summary['peak_rss_mb']:.0f} MB (flat: compare two sizes)")
    ratio = import_rate / base_rate
    print(f"ratio: {ratio:.2f} (target >= {TARGET}: {'met' if ratio >= TARGET else 'MISSED'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
