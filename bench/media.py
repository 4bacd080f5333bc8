"""Benchmarks 1-3: WAV delivery, cached MP3 delivery, cold MP3 (service vs direct S3 / ffmpeg)."""

from __future__ import annotations

import asyncio
import hashlib
import re
import statistics
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil

from bench.audio import BYTES_PER_SECOND, make_wav
from bench.context import Context
from bench.procs import Monitor, run_client
from bench.profiles import profile_while
from bench.report import Row
from service.mp3.commands import mp3_args, mp3_format
from service.services import storage_config
from storage.client import open_storage

MB = 1_000_000
WAV_TARGET = 0.7
# Cold MP3 against bare ffmpeg (design section 12): a minute's overhead is mostly fixed costs.
COLD_TARGETS = {"minute": 1.15, "hour": 1.1}
# "Flat": each stream may hold a few chunks in flight (8 x 256 KiB), never its object, and the
# peak must not grow with the object's size.
RSS_TARGET = 2.0


@dataclass
class Recording:
    label: str
    path: Path
    seconds: int
    sid: str = ""
    size: int = 0
    sha256: str = ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _label(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def prepare(ctx: Context) -> dict[str, Recording]:
    """Write the WAVs and ingest them through the service's own ingest endpoint."""
    audio = ctx.stack.root / "audio"
    audio.mkdir(exist_ok=True)
    sizes = ctx.sizes
    recordings = {
        "minute": Recording("1 min", audio / "minute.wav", sizes.minute_seconds),
        "hour": Recording("", audio / "hour.wav", sizes.hour_seconds),
        "big": Recording("", audio / "big.wav", sizes.big_seconds),
    }
    with httpx.Client(base_url=ctx.service.base_url, timeout=600) as http:
        for rec in recordings.values():
            make_wav(rec.path, rec.seconds)
            rec.size = rec.path.stat().st_size
            rec.sha256 = _sha256(rec.path)
            rec.label = rec.label or f"{_label(rec.seconds)} {rec.size / MB:.1f} MB"
            with rec.path.open("rb") as body:
                answer = http.post(
                    f"/internal/Accounts/{ctx.stack.account_sid}/Recordings.json",
                    params={"CallSid": "CA" + "0" * 32},
                    content=body,
                    headers={
                        "Authorization": f"Bearer {ctx.stack.ingest_token}",
                        "Content-Type": "audio/x-wav",
                    },
                )
            if answer.status_code != 201:
                raise RuntimeError(f"ingest failed: {answer.status_code} {answer.text}")
            rec.sid = answer.json()["sid"]
    return recordings


def _url(ctx: Context, rec: Recording, suffix: str) -> str:
    return (
        f"{ctx.service.base_url}/2008-08-01/Accounts/{ctx.stack.account_sid}"
        f"/Recordings/{rec.sid}{suffix}"
    )


def _storage_spec(ctx: Context) -> dict[str, Any]:
    config = storage_config(ctx.stack.settings())
    return {
        "bucket": config.bucket,
        "endpoint_url": config.endpoint_url,
        "access_key_id": config.access_key_id,
        "secret_access_key": config.secret_access_key,
        "region": config.region,
        "max_connections": config.max_connections,
        "timeout": config.timeout,
    }


async def _row(dsn: str, sid: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT wav_key, mp3_key, mp3_size FROM recordings WHERE sid = $1", sid
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def _presign(ctx: Context, key: str) -> str:
    async with open_storage(storage_config(ctx.stack.settings())) as storage:
        return await storage.presign_get(key, 3600)


@dataclass
class Target:
    """One way of getting the object: through the service, or from S3 directly."""

    name: str
    spec: dict[str, Any]


def _targets(ctx: Context, rec: Recording, suffix: str, key: str) -> list[Target]:
    presigned = asyncio.run(_presign(ctx, key))
    return [
        Target("service", {"mode": "raw", "targets": [_url(ctx, rec, suffix)]}),
        Target(
            "S3 aiobotocore",
            {
                "mode": "boto",
                "targets": [key],
                "storage": _storage_spec(ctx),
                "chunk": ctx.chunk_bytes,
            },
        ),
        Target("S3 presigned, raw client", {"mode": "raw", "targets": [presigned]}),
    ]


def _check(answer: dict[str, Any], size: int, streams: int, what: str) -> None:
    transfers = answer["transfers"]
    bad = [t for t in transfers if t["status"] not in (200, 0) or t["received"] != size]
    if answer["errors"] or bad or len(transfers) != streams:
        raise RuntimeError(f"{what}: errors {answer['errors'][:3]} bad {bad[:3]}")


def _throughput(
    ctx: Context, bench: str, what: str, size: int, targets: list[Target], sha256: str | None
) -> None:
    """Single stream (median of repeats) and N concurrent streams, every way of getting it."""
    for target in targets:  # warm-up, and the bytes are the stored ones
        spec = {**target.spec, "streams": 1, "hash": sha256 is not None}
        answer = run_client(spec)
        _check(answer, size, 1, f"{target.name} warm-up")
        got = answer["transfers"][0].get("sha256")
        if sha256 is not None and got is not None and got != sha256:
            raise RuntimeError(f"{target.name}: the body differs from the source file")

    single: dict[str, list[float]] = {t.name: [] for t in targets}
    for _ in range(ctx.sizes.repeats):
        for target in targets:
            answer = run_client({**target.spec, "streams": 1})
            _check(answer, size, 1, target.name)
            single[target.name].append(size / answer["transfers"][0]["seconds"] / MB)
    medians = {name: statistics.median(values) for name, values in single.items()}
    service, boto, raw = (t.name for t in targets)
    # The headline: what storage itself serves to a raw client. The first round's target was
    # set against the project's own aiobotocore client, which is the second line.
    ctx.report.add(Row(bench, f"{what}, 1 stream", "MB/s", medians[service], medians[raw], raw))
    ctx.report.add(
        Row(
            bench,
            f"{what}, 1 stream",
            "MB/s",
            medians[service],
            medians[boto],
            boto,
            "min",
            WAV_TARGET,
            f"median of {ctx.sizes.repeats}",
        )
    )

    streams = ctx.sizes.streams
    many: dict[str, list[float]] = {t.name: [] for t in targets}
    cpu: dict[str, str] = {}
    for _ in range(ctx.sizes.repeats_many):
        for target in targets:
            monitor = Monitor(ctx.groups(), rss_pid=ctx.service.pid)
            answer = run_client({**target.spec, "streams": streams}, monitor)
            watch = monitor.result
            _check(answer, size, streams, f"{target.name} x{streams}")
            many[target.name].append(answer["bytes"] / answer["wall"] / MB)
            cpu[target.name] = watch.cpu_text()
            if target.name == service:
                ctx.peaks[what] = max(ctx.peaks.get(what, 0), watch.rss_peak)
    rates = {name: statistics.median(values) for name, values in many.items()}
    for target in targets:
        ctx.report.note(
            f"{bench} {what} x{streams} via {target.name}: {rates[target.name]:.0f} MB/s"
            f" (runs {[round(v) for v in many[target.name]]}), CPU of the last run:"
            f" {cpu[target.name]}"
        )
    runs = f"median of {ctx.sizes.repeats_many}, aggregate"
    ctx.report.add(
        Row(bench, f"{what}, {streams} streams", "MB/s", rates[service], rates[raw], raw)
    )
    ctx.report.add(
        Row(
            bench,
            f"{what}, {streams} streams",
            "MB/s",
            rates[service],
            rates[boto],
            boto,
            "min",
            WAV_TARGET,
            runs,
        )
    )


def client_ceiling(ctx: Context, size: int) -> None:
    """The raw client against a raw ASGI app streaming zeros under the same uvicorn settings."""
    url = f"{ctx.baseline.base_url}/zeros?size={size}"
    one = [run_client({"mode": "raw", "targets": [url], "streams": 1}) for _ in range(3)]
    rate = statistics.median(size / a["transfers"][0]["seconds"] / MB for a in one)
    streams = ctx.sizes.streams
    many = run_client({"mode": "raw", "targets": [url], "streams": streams})
    ctx.report.add(
        Row("1", f"client ceiling: raw ASGI zeros {size / MB:.0f} MB, 1 stream", "MB/s", rate)
    )
    ctx.report.add(
        Row(
            "1",
            f"client ceiling: raw ASGI zeros, {streams} streams",
            "MB/s",
            many["bytes"] / many["wall"] / MB,
        )
    )


def wav_delivery(ctx: Context, recs: dict[str, Recording]) -> None:
    client_ceiling(ctx, recs["big"].size)
    # The service's idle RSS: started, one WAV request served, nothing in flight.
    run_client({"mode": "raw", "targets": [_url(ctx, recs["hour"], ".wav")], "streams": 1})
    time.sleep(0.5)
    idle = psutil.Process(ctx.service.pid).memory_info().rss
    ctx.peaks.clear()
    for name in ("hour", "big"):
        rec = recs[name]
        key = asyncio.run(_row(ctx.stack.dsn, rec.sid))["wav_key"]
        _throughput(
            ctx, "1", f"WAV {rec.label}", rec.size, _targets(ctx, rec, ".wav", key), rec.sha256
        )
    streams = ctx.sizes.streams
    for what, peak in ctx.peaks.items():
        ctx.report.add(
            Row(
                "1",
                f"service RSS growth per stream, {what} x{streams}",
                "MiB",
                (peak - idle) / streams / 2**20,
                goal="max",
                target=RSS_TARGET,
                note=f"idle {idle / MB:.0f} MB, peak {peak / MB:.0f} MB (sampled every 20 ms)",
            )
        )
    if ctx.sizes.profile_seconds > 0:
        url = _url(ctx, recs["hour"], ".wav")
        spec = {"mode": "raw", "targets": [url], "streams": streams}
        text = profile_while(ctx, ctx.service.pid, "wav-stream-service", lambda: run_client(spec))
        ctx.report.section(f"1 profile: service during {streams} WAV streams", text)


def _ensure_mp3(ctx: Context, rec: Recording) -> tuple[str, int]:
    answer = run_client({"mode": "raw", "targets": [_url(ctx, rec, ".mp3")], "streams": 1})
    if answer["errors"] or answer["transfers"][0]["status"] != 200:
        raise RuntimeError(f"GET .mp3 failed: {answer}")
    # The first answer comes from the made file while the MP3 is stored: wait for the row.
    deadline = time.monotonic() + 60
    while (row := asyncio.run(_row(ctx.stack.dsn, rec.sid)))["mp3_key"] is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the MP3 of {rec.sid} was not stored")
        time.sleep(0.05)
    return row["mp3_key"], int(row["mp3_size"])


def mp3_cached(ctx: Context, recs: dict[str, Recording]) -> None:
    for name in ("hour", "big"):
        rec = recs[name]
        key, size = _ensure_mp3(ctx, rec)
        label = f"cached MP3 of {_label(rec.seconds)} {size / MB:.1f} MB"
        _throughput(ctx, "2", label, size, _targets(ctx, rec, ".mp3", key), None)


async def _reset_mp3(ctx: Context, rec: Recording) -> None:
    """Back to "never transcoded": no MP3 row facts, no MP3 object, no job."""
    conn = await asyncpg.connect(ctx.stack.dsn)
    try:
        key = await conn.fetchval("SELECT mp3_key FROM recordings WHERE sid = $1", rec.sid)
        await conn.execute(
            "UPDATE recordings SET mp3_key = NULL, mp3_size = NULL, mp3_etag = NULL,"
            " mp3_error = NULL, mp3_created_at = NULL WHERE sid = $1",
            rec.sid,
        )
    finally:
        await conn.close()
    if key:
        async with open_storage(storage_config(ctx.stack.settings())) as storage:
            await storage.delete_objects([key])


def _bare_ffmpeg(ctx: Context, rec: Recording) -> float:
    out = ctx.stack.root / "tmp" / "bare.mp3"
    args = mp3_args(ctx.stack.ffmpeg, out, mp3_format(8000, 1))
    with rec.path.open("rb") as stdin:
        started = time.perf_counter()
        subprocess.run(args, stdin=stdin, check=True)
        took = time.perf_counter() - started
    out.unlink()
    return took


def _transcode_seconds(ctx: Context) -> float | None:
    """The service's ``recordings_transcode_duration_seconds_sum`` (None when not exported)."""
    try:
        with urllib.request.urlopen(ctx.service.base_url + "/metrics", timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return None
    match = re.search(r"^recordings_transcode_duration_seconds_sum\s+(\S+)$", text, re.M)
    return float(match[1]) if match else None


def mp3_cold(ctx: Context, recs: dict[str, Recording]) -> None:
    cmd = mp3_args(ctx.stack.ffmpeg, Path("OUT.mp3"), mp3_format(8000, 1))
    ctx.report.note("3 bare command: " + " ".join(cmd[1:]) + " < FILE.wav")
    for name in ("minute", "hour"):
        rec = recs[name]
        repeats = ctx.sizes.cold_repeats[name]
        totals: list[float] = []
        firsts: list[float] = []
        ffmpegs: list[float] = []
        bare: list[float] = []
        cpu: list[str] = []
        for _ in range(repeats):
            asyncio.run(_reset_mp3(ctx, rec))
            before = _transcode_seconds(ctx)
            monitor = Monitor(ctx.groups())
            answer = run_client(
                {"mode": "raw", "targets": [_url(ctx, rec, ".mp3")], "streams": 1}, monitor
            )
            cpu.append(monitor.result.cpu_text())
            transfer = answer["transfers"][0]
            if answer["errors"] or transfer["status"] != 200:
                raise RuntimeError(f"cold GET .mp3 failed: {answer}")
            totals.append(transfer["seconds"])
            firsts.append(transfer["first_byte"])
            after = _transcode_seconds(ctx)
            if before is not None and after is not None:
                ffmpegs.append(after - before)
            bare.append(_bare_ffmpeg(ctx, rec))
        label = f"cold MP3 of {_label(rec.seconds)} WAV"
        ctx.report.add(
            Row(
                "3",
                label,
                "s",
                statistics.median(totals),
                statistics.median(bare),
                "bare ffmpeg",
                "max",
                COLD_TARGETS[name],
                f"median of {repeats}",
            )
        )
        run = f"{statistics.median(ffmpegs):.3f} s" if ffmpegs else "unknown"
        ctx.report.note(
            f"3 {label}: request {statistics.median(totals):.3f} s = first byte"
            f" {statistics.median(firsts):.3f} s (of which the service's own transcode timer,"
            f" S3 open + ffmpeg run: {run}) + delivery"
            f" {statistics.median(totals) - statistics.median(firsts):.3f} s;"
            f" bare ffmpeg {statistics.median(bare):.3f} s; median of the {repeats} paired ratios"
            f" {statistics.median(t / b for t, b in zip(totals, bare, strict=True)):.2f};"
            f" runs {[round(t, 3) for t in totals]}"
            f" vs {[round(t, 3) for t in bare]}; CPU of the last request: {cpu[-1]}"
        )


def audio_seconds(size_bytes: int) -> int:
    return max(size_bytes // BYTES_PER_SECOND, 1)
