"""``python -m bench.proxy``: proxy-mode WAV delivery against storage itself, in one run.

- 1 stream: a WAV (one hour at 8 kHz, 57.6 MB) through `recordings serve` in proxy mode, beside a
  presigned GET of the same object from SeaweedFS with the same client (bench.client's raw mode);
  the ratio of the medians (target >= 0.75).
- N streams (64): the same WAV N times at once through `serve --workers 1` and `--workers 2`,
  beside storage's own MB/s at N, with the CPU each process group spent (in % of one core), so
  the ceiling is named: which process runs out of CPU first.

The cases take turns in every round (rounds interleaved), so a noisy machine moves them all;
medians of the rounds. Everything runs on the embedded stack (bench/stack.py), stopped by PID at
the end; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from bench.audio import BYTES_PER_SECOND, make_wav
from bench.procs import Monitor, run_client
from bench.stack import VENV_BIN, ServerProcess, Stack, running_stack
from devstack.servers import free_port
from service.services import storage_config
from storage.client import open_storage

MB = 1_000_000
TARGET = 0.75


def _serve(stack: Stack, workdir: Path, workers: int) -> ServerProcess:
    """``recordings serve --workers N`` in proxy mode (the default), as deployed."""
    port = free_port()
    argv = [str(VENV_BIN / "recordings"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers)]
    env = stack.service_env(RECORDINGS_MEDIA_DELIVERY="proxy", RECORDINGS_LOG_LEVEL="WARNING")
    return ServerProcess(f"serve-w{workers}", argv, port=port, env=env, cwd=workdir)


def _ingest(service: ServerProcess, stack: Stack, wav: Path) -> str:
    with httpx.Client(base_url=service.base_url, timeout=600) as http, wav.open("rb") as body:
        answer = http.post(
            f"/internal/Accounts/{stack.account_sid}/Recordings.json",
            params={"CallSid": "CA" + "0" * 32},
            content=body,
            headers={
                "Authorization": f"Bearer {stack.ingest_token}",
                "Content-Type": "audio/x-wav",
            },
        )
    if answer.status_code != 201:
        raise RuntimeError(f"ingest failed: {answer.status_code} {answer.text}")
    sid: str = answer.json()["sid"]
    return sid


async def _presigned(stack: Stack, sid: str) -> str:
    import asyncpg

    conn = await asyncpg.connect(stack.dsn)
    try:
        key = await conn.fetchval("SELECT wav_key FROM recordings WHERE sid = $1", sid)
    finally:
        await conn.close()
    async with open_storage(storage_config(stack.settings())) as storage:
        return await storage.presign_get(key, 3600)


def _check(answer: dict[str, Any], size: int, streams: int, what: str) -> None:
    transfers = answer["transfers"]
    bad = [t for t in transfers if t["status"] != 200 or t["received"] != size]
    if answer["errors"] or bad or len(transfers) != streams:
        raise RuntimeError(f"{what}: errors {answer['errors'][:3]} bad {bad[:3]}")


def _single(url: str, size: int, groups: dict[str, int] | None = None) -> tuple[float, str]:
    monitor = Monitor(groups) if groups else None
    answer = run_client({"mode": "raw", "targets": [url], "streams": 1}, monitor)
    _check(answer, size, 1, url)
    text = monitor.result.cpu_text() if monitor is not None else ""
    return float(size / answer["transfers"][0]["seconds"] / MB), text


def _many(
    url: str, size: int, streams: int, groups: dict[str, int], rss_pid: int | None = None
) -> tuple[float, str]:
    """MB/s of ``streams`` GETs at once, the CPU of each group (and, with ``rss_pid``, that
    process's RSS growth per stream over its RSS before the run)."""
    monitor = Monitor(groups, rss_pid=rss_pid)
    answer = run_client({"mode": "raw", "targets": [url], "streams": streams}, monitor)
    _check(answer, size, streams, f"{url} x{streams}")
    watch = monitor.result
    text = watch.cpu_text()
    if rss_pid is not None and watch.rss_samples:
        growth = (watch.rss_peak - watch.rss_idle) / streams / 2**20
        text += f"; RSS +{growth:.2f} MiB per stream"
    return float(answer["bytes"] / answer["wall"] / MB), text


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600, help="the WAV's length in seconds")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 1-stream runs")
    parser.add_argument("--many-rounds", type=int, default=3, help="rounds of N-stream runs")
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a 5-minute WAV, 3 and 1 rounds")
    parser.add_argument("--no-many", action="store_true", help="only the 1-stream figures")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.many_rounds = 300, 3, 1

    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wav = make_wav(workdir / "call.wav", args.seconds)
        size = wav.stat().st_size
        one = _serve(stack, workdir, 1)
        two = _serve(stack, workdir, 2)
        with one, two:
            one.start()
            two.start()
            sid = _ingest(one, stack, wav)
            path = f"/2010-04-01/Accounts/{stack.account_sid}/Recordings/{sid}.wav"
            urls = {
                "serve": one.base_url + path,
                "serve --workers 2": two.base_url + path,
                "storage": asyncio.run(_presigned(stack, sid)),
            }
            # The 2010 face asks for the account's credentials: the bench account enforces none
            # for media (the default), so the same URL serves the raw client.
            for url in urls.values():  # warm-up: connections, caches, first imports
                _single(url, size)

            groups1 = {"serve": one.pid, "s3": stack.s3.pid or 0}
            singles: dict[str, list[float]] = {"serve": [], "storage": []}
            single_cpu: dict[str, str] = {}
            for _ in range(args.rounds):
                for name in singles:
                    rate, text = _single(urls[name], size, groups1)
                    singles[name].append(rate)
                    single_cpu[name] = text

            many: dict[str, list[float]] = {name: [] for name in urls}
            cpu: dict[str, list[str]] = {name: [] for name in urls}
            s3_pid = stack.s3.pid or 0
            pg_pid = stack.postgres.pid or 0
            pids = {"serve": one.pid, "serve --workers 2": two.pid, "storage": 0}
            if not args.no_many:
                for _ in range(args.many_rounds):
                    for name, url in urls.items():
                        groups = {"s3": s3_pid, "postgres": pg_pid}
                        if pids[name]:
                            groups = {"serve": pids[name], **groups}
                        rss = one.pid if name == "serve" else None
                        rate, text = _many(url, size, args.streams, groups, rss)
                        many[name].append(rate)
                        cpu[name].append(text)

    _print(args, size, singles, single_cpu, many, cpu)
    return 0


def _print(
    args: argparse.Namespace,
    size: int,
    singles: dict[str, list[float]],
    single_cpu: dict[str, str],
    many: dict[str, list[float]],
    cpu: dict[str, list[str]],
) -> None:
    rounded: Callable[[list[float]], list[int]] = lambda values: [round(v) for v in values]  # noqa: E731
    minutes = size / BYTES_PER_SECOND / 60
    print(f"WAV {minutes:.0f} min, {size / MB:.1f} MB, proxy mode")
    serve, storage = _median(singles["serve"]), _median(singles["storage"])
    ratio = serve / storage
    verdict = "met" if ratio >= TARGET else "NOT met"
    print(f"1 stream, median of {args.rounds}:")
    for name, label, median in (
        ("serve", "serve (proxy)", serve),
        ("storage", "storage (presigned)", storage),
    ):
        runs = rounded(singles[name])
        print(f"  {label:<22} {median:8.0f} MB/s  runs {runs}  {single_cpu[name]}")
    print(f"  ratio                  {ratio:8.2f}       target >= {TARGET} ({verdict})")
    if args.no_many:
        return
    print(f"{args.streams} streams, median of {args.many_rounds}, CPU in % of one core (last run):")
    for name, values in many.items():
        print(f"  {name:<22} {_median(values):8.0f} MB/s  runs {rounded(values)}  {cpu[name][-1]}")
    base = _median(many["storage"])
    for name in ("serve", "serve --workers 2"):
        print(f"  {name} / storage  {_median(many[name]) / base:8.2f}")


if __name__ == "__main__":
    raise SystemExit(main())
