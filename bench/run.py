"""``python -m bench [--quick] [--only NAME[,NAME]]``: every benchmark on the embedded stack.

Starts PostgreSQL and SeaweedFS (devstack.servers) in a fresh directory under /tmp, the service
(``recordings serve``: uvicorn, uvloop, httptools) and the raw ASGI baselines each in a process
of their own, runs the benchmarks with the load generators in further processes, prints the
table, and stops everything it started, on every way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

import psutil

from bench import accel, dataset, media, metadata
from bench.context import FULL, QUICK, Context, Sizes
from bench.report import Report, print_sections, print_table
from bench.stack import baseline_process, running_stack, service_process

BENCHMARKS = ("wav", "mp3", "cold", "accel", "rps", "list", "token")
MEDIA = {"wav", "mp3", "cold", "accel"}
METADATA = {"rps", "list", "token"}


def machine() -> dict[str, object]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds each")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only these (comma-separated, repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument("--rows", type=int, help="recordings in all (full: 10,000,000)")
    parser.add_argument(
        "--account-rows", type=int, help="recordings in the listed account (full: 1,000,000)"
    )
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the Python load generator even if wrk is here"
    )
    parser.add_argument("--out", type=Path, help="where results.json and profiles go")
    args = parser.parse_args(argv)
    chosen = {name for item in args.only for name in item.split(",") if name}
    unknown = chosen - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")
    args.selected = [name for name in BENCHMARKS if not chosen or name in chosen]
    return args


def _sizes(args: argparse.Namespace) -> Sizes:
    sizes = QUICK if args.quick else FULL
    if args.rows:
        sizes = replace(sizes, total_rows=args.rows)
    if args.account_rows:
        sizes = replace(sizes, account_rows=args.account_rows)
    if sizes.account_rows > sizes.total_rows:
        sizes = replace(sizes, account_rows=sizes.total_rows)
    if args.no_profile:
        sizes = replace(sizes, profile_seconds=0.0)
    return sizes


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    sizes = _sizes(args)
    selected = set(args.selected)
    out = args.out or Path(tempfile.mkdtemp(prefix="recordings-bench-results-"))
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _terminate)
    info = machine()
    command = " ".join([Path(sys.executable).name, "-m", "bench", *(argv or sys.argv[1:])])
    print(
        f"machine: {info}\nrunning: {', '.join(args.selected)} ({'quick' if args.quick else 'full'})"
        f"; results in {out}",
        flush=True,
    )
    report = Report()
    started = time.perf_counter()
    with running_stack() as stack, contextlib.ExitStack() as servers:
        if selected & METADATA:
            print(
                f"loading {sizes.total_rows:,} recordings ({sizes.account_rows:,} in one account)"
                " with INSERT ... SELECT generate_series ...",
                flush=True,
            )
            made = asyncio.run(
                dataset.load(
                    stack.dsn,
                    stack.list_account_sid,
                    total=sizes.total_rows,
                    in_account=sizes.account_rows,
                    other_accounts=sizes.other_accounts,
                )
            )
            report.note(
                f"dataset: {made.total:,} rows, {made.in_account:,} in the listed account,"
                f" {made.other_accounts} other accounts; load {made.load_seconds};"
                f" table {made.table_bytes / 2**20:,.0f} MiB, indexes"
                f" { {k: round(v / 2**20) for k, v in made.index_bytes.items()} } MiB"
            )
        service = servers.enter_context(service_process(stack, stack.root))
        baseline = servers.enter_context(baseline_process(stack, stack.root))
        service.start()
        baseline.start()
        ctx = Context(
            stack=stack,
            service=service,
            baseline=baseline,
            sizes=sizes,
            report=report,
            out=out,
            chunk_bytes=stack.settings().stream_chunk_bytes,
            use_wrk=not args.no_wrk,
        )
        report.note(
            f"{info['cores']} cores shared, no pinning: service = one uvicorn process (pid"
            f" {service.pid}), client = one more process (raw asyncio client, aiobotocore or wrk"
            " -t1), PostgreSQL and SeaweedFS beside them; CPU lines give each one's share in %"
            " of one core"
        )
        if selected & MEDIA:
            print("writing and ingesting the WAVs ...", flush=True)
            recordings = media.prepare(ctx)
            if "wav" in selected:
                print("[1] WAV delivery", flush=True)
                media.wav_delivery(ctx, recordings)
            if "mp3" in selected:
                print("[2] cached MP3 delivery", flush=True)
                media.mp3_cached(ctx, recordings)
            if "cold" in selected:
                print("[3] cold MP3", flush=True)
                media.mp3_cold(ctx, recordings)
            if "accel" in selected:
                print("[7] accel delivery through nginx", flush=True)
                accel.accel_delivery(ctx, recordings)
        if "rps" in selected:
            print("[4] metadata requests per second", flush=True)
            metadata.metadata_rps(ctx)
        if "list" in selected:
            print("[5] list latency", flush=True)
            metadata.list_latency(ctx)
        if "token" in selected:
            print("[6] 2010 list: PageToken paging", flush=True)
            metadata.token_paging(ctx)
    elapsed = time.perf_counter() - started
    report.save(out / "results.json", {"machine": info, "command": command, "seconds": elapsed})
    print_sections(report)
    print(
        f"\n==== {command} on {info['cores']} x {info['cpu']}, {info['memory_gib']} GiB;"
        f" {elapsed:.0f} s\n"
    )
    print_table(report)
    print(f"\nresults: {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
