"""``python -m bench.encryption``: what Voice Recording Encryption costs an ingest, beside the
same ingest stored in the clear, measured side by side in one run.

- ingest: the same WAV uploaded through `recordings serve` (the production entry point) to an
  account that encrypts its recordings and to one that does not, one at a time, alternating (the
  order swapped every pair, so neither side always runs on a warmer machine); medians of the
  request times to the 201, and their ratio. A one-minute and a one-hour 8 kHz recording.
- the pipeline alone: ``ingest_file`` called in this process (no HTTP, no spooling of the
  upload) on the one-minute file, alternating as above, medians and their ratio;
- the work itself, in this process on the one-hour file: ``encrypt_file`` (AES-256-GCM of the
  file into a new one, SHA-256 of the ciphertext on the way, RSA-OAEP of the key) beside
  ``file_etag`` (the SHA-256 read a clear ingest does instead), medians of ``--runs``.

Everything runs on the embedded stack (bench/stack.py), stopped by PID at the end; nothing is
asserted (no timed tests).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.audio import BYTES_PER_SECOND, make_wav
from bench.stack import Stack, running_stack, service_process
from service.accounts.registry import create_account
from service.encryption.cipher import encrypt_file
from service.encryption.registry import choose_encryption_key, register_public_key
from service.ingest.pipeline import Upload, ingest_file
from service.recordings.objects import file_etag
from service.services import open_services
from service.sids import new_sid


def _public_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def _encrypting_account(stack: Stack, public_pem: str) -> str:
    async def go() -> str:
        pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=1)
        try:
            made = await create_account(pool, "bench encrypted")
            key = await register_public_key(pool, made.account_sid, public_pem, "bench")
            await choose_encryption_key(pool, made.account_sid, key.sid)
        finally:
            await pool.close()
        return made.account_sid

    return asyncio.run(go())


def _encrypted_rows(stack: Stack, account_sid: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(stack.dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM recordings WHERE account_sid = $1"
                    " AND encryption_details IS NOT NULL",
                    account_sid,
                )
            )
        finally:
            await conn.close()

    return asyncio.run(go())


def _ingest(http: httpx.Client, stack: Stack, account_sid: str, wav: Path) -> float:
    """One upload, streamed from the file as a voice platform does; seconds to the 201."""
    started = time.perf_counter()
    with wav.open("rb") as body:
        response = http.post(
            f"/internal/Accounts/{account_sid}/Recordings.json",
            params={"CallSid": new_sid("CA")},
            content=body,
            headers={
                "Authorization": f"Bearer {stack.ingest_token}",
                "Content-Type": "audio/x-wav",
            },
        )
    seconds = time.perf_counter() - started
    response.raise_for_status()
    return seconds


def _pairs(
    http: httpx.Client, stack: Stack, clear: str, sealed: str, wav: Path, pairs: int
) -> tuple[list[float], list[float]]:
    plain: list[float] = []
    encrypted: list[float] = []
    for i in range(2 * pairs):
        if (i % 2 == 0) == (i % 4 < 2):
            plain.append(_ingest(http, stack, clear, wav))
        else:
            encrypted.append(_ingest(http, stack, sealed, wav))
    return plain, encrypted


def _pipeline_pairs(
    stack: Stack, clear: str, sealed: str, wav: Path, pairs: int, workdir: Path
) -> tuple[list[float], list[float]]:
    """``ingest_file`` in this process, alternating as the served pairs do."""

    async def go() -> tuple[list[float], list[float]]:
        plain: list[float] = []
        encrypted: list[float] = []
        async with open_services(stack.settings()) as services:
            for i in range(2 * pairs):
                account, into = (
                    (clear, plain) if (i % 2 == 0) == (i % 4 < 2) else (sealed, encrypted)
                )
                with tempfile.TemporaryDirectory(dir=workdir) as scratch:
                    started = time.perf_counter()
                    await ingest_file(services, Upload(account, new_sid("CA")), wav, Path(scratch))
                    into.append(time.perf_counter() - started)
        return plain, encrypted

    return asyncio.run(go())


def _median_seconds(runs: int, once: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encryption", description=__doc__)
    parser.add_argument("--pairs", type=int, default=30, help="one-minute ingests of each kind")
    parser.add_argument("--long-pairs", type=int, default=5, help="long ingests of each kind")
    parser.add_argument("--long-seconds", type=int, default=3600, help="the long recording")
    parser.add_argument("--runs", type=int, default=5, help="runs of the in-process figures")
    parser.add_argument("--quick", action="store_true", help="10 pairs, a 10-minute long one")
    args = parser.parse_args(argv)
    if args.quick:
        args.pairs, args.long_pairs, args.long_seconds, args.runs = 10, 3, 600, 3

    public_pem = _public_pem()
    rows: list[tuple[str, float, float]] = []
    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        minute = make_wav(workdir / "minute.wav", 60)
        long = make_wav(workdir / "long.wav", args.long_seconds)
        sealed = _encrypting_account(stack, public_pem)
        clear = stack.account_sid
        service = service_process(stack, workdir)
        service.env.update(RECORDINGS_LOG_LEVEL="WARNING", RECORDINGS_ACCESS_LOG="false")
        with service:
            service.start()
            with httpx.Client(base_url=service.base_url, timeout=600) as http:
                _pairs(http, stack, clear, sealed, minute, 3)  # warm up both paths
                for name, wav, pairs in (
                    ("1 min", minute, args.pairs),
                    (f"{args.long_seconds // 60} min", long, args.long_pairs),
                ):
                    plain, encrypted = _pairs(http, stack, clear, sealed, wav, pairs)
                    rows.append((name, statistics.median(plain), statistics.median(encrypted)))
        _pipeline_pairs(stack, clear, sealed, minute, 3, workdir)  # warm up
        pipeline = _pipeline_pairs(stack, clear, sealed, minute, args.pairs, workdir)
        stored = _encrypted_rows(stack, sealed)

        sealed_file = workdir / "long.enc"

        def encrypt() -> None:
            sealed_file.unlink(missing_ok=True)
            encrypt_file(long, sealed_file, public_key_sid=new_sid("CR"), public_key_pem=public_pem)

        hash_only = _median_seconds(args.runs, lambda: file_etag(long))
        with_encryption = _median_seconds(args.runs, encrypt)

    megabytes = args.long_seconds * BYTES_PER_SECOND / 1e6
    print("ingest through `recordings serve`, one at a time, clear and encrypted alternating")
    print(f"{'recording':<12}{'pairs':>6}{'clear ms':>11}{'encrypted ms':>14}{'ratio':>8}")
    for (name, plain_median, sealed_median), pairs in zip(
        rows, (args.pairs, args.long_pairs), strict=True
    ):
        print(
            f"{name:<12}{pairs:>6}{plain_median * 1000:>11.1f}{sealed_median * 1000:>14.1f}"
            f"{sealed_median / plain_median:>8.3f}"
        )
    plain_pipe, sealed_pipe = (statistics.median(times) for times in pipeline)
    print(
        f"ingest_file in process, 1 min, {args.pairs} pairs: clear {plain_pipe * 1000:.1f} ms,"
        f" encrypted {sealed_pipe * 1000:.1f} ms -> ratio {sealed_pipe / plain_pipe:.3f}"
    )
    print(f"(encrypted recordings stored: {stored})")
    print(
        f"in process, the {args.long_seconds} s file ({megabytes:.1f} MB), median of {args.runs}:"
    )
    print(
        f"  SHA-256 read (clear ingest) {hash_only * 1000:.1f} ms ({megabytes / hash_only:.0f} MB/s);"
        f" encrypt + SHA-256 + RSA-OAEP {with_encryption * 1000:.1f} ms"
        f" ({megabytes / with_encryption:.0f} MB/s) -> ratio {with_encryption / hash_only:.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
