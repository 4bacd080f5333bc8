"""``python -m bench.callbacks``: status callbacks delivered per second, and what a callback
adds to an ingest, each beside a baseline measured in the same run.

- delivery: 1,000 ingests in a burst, each with a RecordingStatusCallback, while `recordings
  worker` runs; callbacks/s from the first delivery to the last, beside the ingest rate of the
  same burst (the worker keeps up when the ratio is >= 1), and the same worker draining a
  backlog of 1,000 queued callbacks, beside raw httpx POSTs of the same bodies to the same
  receiver at the same concurrency (what the receiver and the loopback can take).
- ingest cost: the same WAV ingested alternately with and without a callback (no worker
  running, so only the ingest's own work: the guard, the outbox row, the transaction), as a
  ratio of mean ingest times.
- fairness (``--silent N``): N receivers that accept and never answer, one account's 8
  callbacks to them, then another account's callback to the answering receiver: its delivery
  latency (its ingest request sent to its arrival; the ingest itself included), with the per-host and per-account limits off
  (both set to the worker's 8 slots, as before they existed) and at their defaults.

The receiver is a minimal asyncio HTTP/1.1 server in this process that answers 204 at once.
Everything runs on the embedded stack (bench/stack.py), stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qsl

import asyncpg
import httpx

from bench.audio import make_wav
from bench.stack import VENV_BIN, ServerProcess, Stack, running_stack, service_process
from devstack.servers import free_port
from service.accounts.registry import create_account
from service.accounts.sealing import TokenSealer
from service.sids import new_sid

SECRET_KEY = "bench-secret-key-" + "0" * 32


class Receiver:
    """An asyncio HTTP/1.1 receiver on 127.0.0.1 answering 204, noting when each arrived."""

    def __init__(self) -> None:
        self.port = free_port()
        self.arrivals: dict[str, float] = {}
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=1024)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                sid = dict(parse_qsl(body.decode())).get("RecordingSid", "")
                self.requests += 1
                self.arrivals.setdefault(sid, time.monotonic())
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def wait_for(self, sids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not sids <= self.arrivals.keys():
            if time.monotonic() > deadline:
                missing = len(sids - self.arrivals.keys())
                raise RuntimeError(f"{missing} callbacks not delivered in {timeout} s")
            time.sleep(0.02)


async def _ingest_all(
    base_url: str,
    stack: Stack,
    account: str,
    wav: bytes,
    count: int,
    concurrency: int,
    callback: str | None,
) -> tuple[list[str], list[float], float]:
    """``count`` ingests, ``concurrency`` at a time: their SIDs, durations, and the wall time."""
    sids: list[str] = []
    durations: list[float] = []
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:

        async def one() -> None:
            params = {"CallSid": new_sid("CA")}
            if callback:
                params["RecordingStatusCallback"] = callback
            async with gate:
                started = time.perf_counter()
                response = await client.post(
                    f"/internal/Accounts/{account}/Recordings.json",
                    params=params,
                    content=wav,
                    headers={"Authorization": f"Bearer {stack.ingest_token}"},
                )
                durations.append(time.perf_counter() - started)
            response.raise_for_status()
            sids.append(response.json()["sid"])

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(count)))
        return sids, durations, time.perf_counter() - started


async def _raw_posts(url: str, bodies: list[bytes], concurrency: int) -> float:
    """The baseline: the same form bodies POSTed straight to the receiver; wall seconds."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:

        async def one(body: bytes) -> None:
            async with gate:
                response = await client.post(
                    url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
                )
                response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - started


class Silent:
    """Receivers on 127.0.0.1 that take connections and requests and never answer."""

    def __init__(self, count: int) -> None:
        self.ports = [free_port() for _ in range(count)]
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # until the sender gives up
            writer.close()

        servers = [
            self._loop.run_until_complete(asyncio.start_server(hold, "127.0.0.1", port))
            for port in self.ports
        ]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            for server in servers:
                server.close()
            # The connections still held are dropped with their tasks.
            held = asyncio.all_tasks(self._loop)
            for task in held:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*held, return_exceptions=True))
            self._loop.close()

    def __enter__(self) -> Silent:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _other_accounts_latency(
    stack: Stack,
    base: str,
    wav: bytes,
    receiver: Receiver,
    worker_env: dict[str, str],
    workdir: Path,
    silent: int,
    limits: dict[str, str],
) -> float:
    """Seconds from another account's ingest request to its callback's arrival, while one
    account's 8 callbacks wait on ``silent`` receivers that never answer."""
    noisy, quiet = _make_account(stack), _make_account(stack)
    port = free_port()
    worker = ServerProcess(
        "worker",
        [str(VENV_BIN / "recordings"), "worker", "--metrics-port", str(port)],
        port=port,
        env={**worker_env, **limits},
        cwd=workdir,
    )
    with Silent(silent) as hosts, worker:
        for i in range(8):
            url = f"http://127.0.0.1:{hosts.ports[i % silent]}/hook"
            asyncio.run(_ingest_all(base, stack, noisy, wav, 1, 1, url))
        worker.start(health_path="/metrics")
        time.sleep(1.0)  # the silent ones are claimed and under way
        # From the ingest request's start: the callback may arrive before its 201 is read.
        sent = time.monotonic()
        sids, _, _ = asyncio.run(_ingest_all(base, stack, quiet, wav, 1, 1, receiver.url))
        receiver.wait_for(set(sids), timeout=120)
        return receiver.arrivals[sids[0]] - sent


def _make_account(stack: Stack) -> str:
    async def go() -> str:
        pool = await asyncpg.create_pool(stack.dsn, min_size=1, max_size=1)
        try:
            made = await create_account(pool, "bench callbacks", sealer=TokenSealer(SECRET_KEY))
        finally:
            await pool.close()
        return made.account_sid

    return asyncio.run(go())


def _queued(stack: Stack) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(stack.dsn)
        try:
            return int(
                await conn.fetchval("SELECT count(*) FROM callbacks WHERE status = 'pending'")
            )
        finally:
            await conn.close()

    return asyncio.run(go())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.callbacks", description=__doc__)
    parser.add_argument("--burst", type=int, default=1000, help="ingests in the burst")
    parser.add_argument("--pairs", type=int, default=150, help="ingests with and without, each")
    parser.add_argument("--concurrency", type=int, default=16, help="ingests at a time")
    parser.add_argument("--silent", type=int, default=8, help="silent receivers (fairness)")
    parser.add_argument(
        "--silent-timeout", type=float, default=15.0, help="the worker's callback timeout"
    )
    parser.add_argument(
        "--only-fairness", action="store_true", help="measure the fairness figure only"
    )
    args = parser.parse_args(argv)

    with running_stack() as stack, Receiver() as receiver, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wav = make_wav(workdir / "one-second.wav", 1).read_bytes()
        account = _make_account(stack)
        extra = {
            "RECORDINGS_SECRET_KEY": SECRET_KEY,
            "RECORDINGS_WEBHOOK_ALLOW_PRIVATE": "true",
            "RECORDINGS_LOG_LEVEL": "WARNING",
            "RECORDINGS_ACCESS_LOG": "false",
        }
        service = service_process(stack, workdir)
        service.env.update(extra)
        worker_env = {**service.env}
        worker_port = free_port()
        worker = ServerProcess(
            "worker",
            [str(VENV_BIN / "recordings"), "worker", "--metrics-port", str(worker_port)],
            port=worker_port,
            env=worker_env,
            cwd=workdir,
        )
        with service:
            service.start()
            base = service.base_url
            # Warm up: connections, caches, the guard's path.
            asyncio.run(_ingest_all(base, stack, account, wav, 20, 4, None))

            # 0. Fairness: another account's callback beside silent receivers.
            timeout = {"RECORDINGS_CALLBACK_TIMEOUT": f"{args.silent_timeout:g}"}
            unlimited = {
                **timeout,
                "RECORDINGS_CALLBACK_HOST_CONCURRENCY": "8",
                "RECORDINGS_CALLBACK_ACCOUNT_CONCURRENCY": "8",
            }
            before = _other_accounts_latency(
                stack, base, wav, receiver, worker_env, workdir, args.silent, unlimited
            )
            after = _other_accounts_latency(
                stack, base, wav, receiver, worker_env, workdir, args.silent, timeout
            )
            print(
                f"fairness: another account's callback beside {args.silent} silent receiver(s)"
                f" holding 8 callbacks (timeout {args.silent_timeout:g} s): delivered"
                f" {before:.2f} s after its ingest was sent without per-host/account limits,"
                f" {after:.3f} s with them (defaults)"
            )
            if args.only_fairness:
                return 0

            # 1. The cost per ingest, alternating so drift affects both sides alike.
            plain: list[float] = []
            with_cb: list[float] = []
            queued: list[str] = []
            for i in range(2 * args.pairs):
                # One of each in turn, the order swapped every pair, so neither side is always
                # the one that runs on a warmer (or a busier) machine.
                if (i % 2 == 0) == (i % 4 < 2):
                    plain += asyncio.run(_ingest_all(base, stack, account, wav, 1, 1, None))[1]
                else:
                    sids, durations, _ = asyncio.run(
                        _ingest_all(base, stack, account, wav, 1, 1, receiver.url)
                    )
                    with_cb += durations
                    queued += sids

            # 2. A backlog drained by the worker vs raw POSTs of the same bodies.
            burst, _, _ = asyncio.run(
                _ingest_all(base, stack, account, wav, args.burst, args.concurrency, receiver.url)
            )
            # The callbacks of the cost phase wait too: all of them make the backlog.
            backlog_sids = queued + burst
            backlog = _queued(stack)
            start_drain = time.monotonic()
            with worker:
                worker.start(health_path="/metrics")
                receiver.wait_for(set(backlog_sids), timeout=600)
                arrivals = sorted(receiver.arrivals[s] for s in backlog_sids)
                drain_seconds = arrivals[-1] - arrivals[0]
                drain_total = arrivals[-1] - start_drain

                # 3. A burst of ingests while the worker runs.
                burst_sids, _, burst_wall = asyncio.run(
                    _ingest_all(
                        base, stack, account, wav, args.burst, args.concurrency, receiver.url
                    )
                )
                burst_end = time.monotonic()
                receiver.wait_for(set(burst_sids), timeout=600)
                times = sorted(receiver.arrivals[s] for s in burst_sids)
                burst_delivery = times[-1] - times[0]
                lag_after_burst = max(0.0, times[-1] - burst_end)
            bodies = [
                f"AccountSid={account}&RecordingSid={new_sid('RE')}&RecordingStatus=completed".encode()
                for _ in range(args.burst)
            ]
            raw_seconds = asyncio.run(_raw_posts(receiver.url, bodies, 8))

    duplicates = receiver.requests - receiver.arrivals.keys().__len__()
    mean_plain, mean_cb = statistics.mean(plain), statistics.mean(with_cb)
    drain_rate = len(backlog_sids) / drain_seconds
    raw_rate = args.burst / raw_seconds
    burst_ingest_rate = args.burst / burst_wall
    burst_rate = len(burst_sids) / burst_delivery
    print(
        f"status callbacks, one run (callback concurrency 8, ingest concurrency {args.concurrency})"
    )
    print(f"  pending when the worker started: {backlog}")
    print(
        f"  ingest, mean of {len(plain)} each: without callback {mean_plain * 1000:.1f} ms,"
        f" with {mean_cb * 1000:.1f} ms -> ratio {mean_cb / mean_plain:.3f}"
        f" (median {statistics.median(with_cb) / statistics.median(plain):.3f})"
    )
    print(
        f"  backlog of {len(backlog_sids)} drained: {drain_rate:.0f} callbacks/s"
        f" (first to last; {drain_total:.1f} s from worker start) vs raw POSTs to the same"
        f" receiver, 8 at a time: {raw_rate:.0f}/s -> ratio {drain_rate / raw_rate:.2f}"
    )
    print(
        f"  burst of {len(burst_sids)} ingests while the worker runs: ingested at"
        f" {burst_ingest_rate:.0f}/s, delivered at {burst_rate:.0f} callbacks/s -> ratio"
        f" {burst_rate / burst_ingest_rate:.2f}; last callback {lag_after_burst:.2f} s after the"
        " last ingest's 201"
    )
    print(f"  requests received beyond one per callback: {duplicates}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
