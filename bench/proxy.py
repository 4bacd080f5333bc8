"""``python -m bench.proxy``: proxy-mode WAV delivery against storage itself, in one run.

- 1 stream: a WAV (one hour at 8 kHz, 57.6 MB) through `recordings serve` in proxy mode, in
  chunks (the default) and spliced (RECORDINGS_STREAM_SPLICE=true), beside a presigned GET of
  the same object from SeaweedFS with the same client (bench.client's raw mode); the ratio of the
  medians (target >= 0.75).
- N streams (64): the same WAV N times at once through each of those and `serve --workers 2`,
  beside storage's own MB/s at N, with the CPU each process group spent (in % of one core), so
  the ceiling is named: which process runs out of CPU first.
- With ``--before CHECKOUT``, the `serve` of another checkout (its own .venv, e.g. the main
  branch) takes its turn beside them, at 1 and N streams with one worker.

Every figure of a service also gives its CPU seconds per GB served, the figure a shared machine
moves least.

The cases take turns in every round (rounds interleaved), so a noisy machine moves them all;
medians of the rounds. Everything runs on the embedded stack (bench/stack.py), stopped by PID at
the end; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
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


def _serve(
    stack: Stack,
    workdir: Path,
    workers: int,
    bin_dir: Path = VENV_BIN,
    *,
    splice: bool = False,
) -> ServerProcess:
    """``recordings serve --workers N`` in proxy mode (the default), as deployed; with
    ``splice``, RECORDINGS_STREAM_SPLICE=true."""
    port = free_port()
    argv = [str(bin_dir / "recordings"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--workers", str(workers)]
    env = stack.service_env(RECORDINGS_MEDIA_DELIVERY="proxy", RECORDINGS_LOG_LEVEL="WARNING")
    if splice:
        env["RECORDINGS_STREAM_SPLICE"] = "true"
    name = f"serve-{port}"  # its log: serve-PORT.log in the work directory
    return ServerProcess(name, argv, port=port, env=env, cwd=workdir)


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


@dataclass
class Run:
    """One measured transfer (or N at once): MB/s, the service's CPU seconds per GB (when a
    service took part) and every group's CPU in % of one core."""

    rate: float
    serve_s_per_gb: float | None
    cpu: str


def _run(
    url: str, size: int, streams: int, groups: dict[str, int], rss_pid: int | None = None
) -> Run:
    """``streams`` GETs of ``url`` at once (with ``rss_pid``, that process's RSS growth per
    stream over its RSS before the run is added to the CPU text)."""
    monitor = Monitor(groups, rss_pid=rss_pid)
    answer = run_client({"mode": "raw", "targets": [url], "streams": streams}, monitor)
    _check(answer, size, streams, f"{url} x{streams}")
    watch = monitor.result
    text = watch.cpu_text()
    if rss_pid is not None and watch.rss_samples:
        growth = (watch.rss_peak - watch.rss_idle) / streams / 2**20
        text += f"; RSS +{growth:.2f} MiB per stream"
    if streams == 1:
        rate = size / answer["transfers"][0]["seconds"] / MB
    else:
        rate = answer["bytes"] / answer["wall"] / MB
    per_gb = watch.cpu["serve"] / (answer["bytes"] / 1e9) if "serve" in watch.cpu else None
    return Run(float(rate), per_gb, text)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600, help="the WAV's length in seconds")
    parser.add_argument("--rounds", type=int, default=15, help="rounds of 1-stream runs")
    parser.add_argument("--many-rounds", type=int, default=3, help="rounds of N-stream runs")
    parser.add_argument("--streams", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a 5-minute WAV, 3 and 1 rounds")
    parser.add_argument("--no-many", action="store_true", help="only the 1-stream figures")
    parser.add_argument(
        "--before",
        type=Path,
        help="a checkout of the code before (with its .venv): its `serve` is measured too",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.many_rounds = 300, 3, 1

    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp, ExitStack() as stop:
        workdir = Path(tmp)
        wav = make_wav(workdir / "call.wav", args.seconds)
        size = wav.stat().st_size
        servers = {
            "serve": _serve(stack, workdir, 1),
            "serve, spliced": _serve(stack, workdir, 1, splice=True),
        }
        if args.before is not None:
            servers["serve, before"] = _serve(stack, workdir, 1, args.before / ".venv" / "bin")
        servers["serve --workers 2"] = _serve(stack, workdir, 2)
        for server in servers.values():
            stop.enter_context(server).start()
        sid = _ingest(servers["serve"], stack, wav)
        path = f"/2010-04-01/Accounts/{stack.account_sid}/Recordings/{sid}.wav"
        # The bench account enforces no media credentials (the default): one URL for all.
        urls = {name: server.base_url + path for name, server in servers.items()}
        urls["storage"] = asyncio.run(_presigned(stack, sid))
        for url in urls.values():  # warm-up: connections, caches, first imports
            _run(url, size, 1, {})

        def groups(name: str) -> dict[str, int]:
            found = {"s3": stack.s3.pid or 0, "postgres": stack.postgres.pid or 0}
            return {"serve": servers[name].pid, **found} if name in servers else found

        single_names = [name for name in urls if name != "serve --workers 2"]
        singles: dict[str, list[Run]] = {name: [] for name in single_names}
        for _ in range(args.rounds):
            for name in single_names:
                singles[name].append(_run(urls[name], size, 1, groups(name)))
        many: dict[str, list[Run]] = {name: [] for name in urls}
        for _ in range(0 if args.no_many else args.many_rounds):
            for name, url in urls.items():
                rss = servers[name].pid if name in servers and "workers" not in name else None
                many[name].append(_run(url, size, args.streams, groups(name), rss))

    print(f"WAV {size / BYTES_PER_SECOND / 60:.0f} min, {size / MB:.1f} MB, proxy mode")
    print(f"1 stream, median of {args.rounds} (CPU: the last run, % of one core):")
    _print(singles, "serve (proxy)")
    if not args.no_many:
        print(f"{args.streams} streams, median of {args.many_rounds}:")
        _print(many, f"serve x{args.streams}")
    return 0


def _print(runs: dict[str, list[Run]], what: str) -> None:
    base = _median([run.rate for run in runs["storage"]])
    for name, measured in runs.items():
        rate = _median([run.rate for run in measured])
        costs = [run.serve_s_per_gb for run in measured if run.serve_s_per_gb is not None]
        cost = f"  serve {_median(costs):.2f} s CPU/GB" if costs else ""
        versus = f"  {rate / base:.2f}x storage" if name != "storage" else ""
        print(f"  {name:<20} {rate:6.0f} MB/s{versus}{cost}")
        print(f"      runs {[round(run.rate) for run in measured]}; {measured[-1].cpu}")
    if what == "serve (proxy)":
        for name in ("serve", "serve, spliced"):
            ratio = _median([run.rate for run in runs[name]]) / base
            verdict = "met" if ratio >= TARGET else "NOT met"
            print(f"  target: {name} >= {TARGET}x storage at one stream: {ratio:.2f} ({verdict})")


if __name__ == "__main__":
    raise SystemExit(main())
