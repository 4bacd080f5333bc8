"""``python -m bench.ingest``: the ingest of a long PCM WAV beside a raw S3 PUT of the same bytes.

- ingest: the WAV (one hour at 8 kHz, 57.6 MB) POSTed to ``recordings serve`` (the production
  entry point) by curl, streamed from the file, timed to the 201;
- baseline: the same file PUT by the same curl to a presigned URL of the same SeaweedFS (what
  storage itself takes, with nothing in between).

The two take turns (the order swapped every round, so neither always runs on a warmer machine);
medians of ``--rounds`` and their ratio (target >= 0.8). The service's peak RSS over the ingests
(sampled every 20 ms) beside its idle RSS shows that memory stays flat. Everything runs on the
embedded stack (bench/stack.py), stopped by PID at the end; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench.audio import BYTES_PER_SECOND, make_wav
from bench.procs import Monitor
from bench.stack import Stack, running_stack, service_process
from service.services import storage_config
from service.sids import new_sid
from storage.client import open_storage

CURL = shutil.which("curl") or "curl"


def _presigned_put(stack: Stack, key: str) -> str:
    async def go() -> str:
        async with open_storage(storage_config(stack.settings())) as storage:
            # The raw client: the bench measures storage, not the service's storage layer.
            url: str = await storage._client.generate_presigned_url(
                "put_object",
                Params={"Bucket": storage.bucket, "Key": key, "ContentType": "audio/x-wav"},
                ExpiresIn=3600,
            )
            return url

    return asyncio.run(go())


def _curl(method: str, url: str, wav: Path, headers: dict[str, str]) -> float:
    """Seconds for curl to send ``wav`` (streamed from the file, ``-T``) and read the answer."""
    argv = [CURL, "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "-T", str(wav)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    # curl sends "Expect: 100-continue" for large bodies and waits for the answer: neither side
    # should pay that wait.
    argv += ["-H", "Expect:", url]
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, timeout=600)
    seconds = time.perf_counter() - started
    status = done.stdout.decode().strip()
    if done.returncode != 0 or not status.startswith("2"):
        raise RuntimeError(
            f"{method} {url}: curl {done.returncode}, HTTP {status}: {done.stderr!r}"
        )
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    parser.add_argument("--seconds", type=int, default=3600, help="length of the WAV")
    parser.add_argument("--rounds", type=int, default=7, help="ingests and PUTs, each")
    parser.add_argument("--quick", action="store_true", help="a 10-minute WAV, 5 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds = 600, 5

    with running_stack() as stack, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        wav = make_wav(workdir / "long.wav", args.seconds)
        size = wav.stat().st_size
        put_url = _presigned_put(stack, "bench/raw-put.wav")
        service = service_process(stack, workdir)
        service.env.update(RECORDINGS_LOG_LEVEL="WARNING", RECORDINGS_ACCESS_LOG="false")
        ingest_url = f"/internal/Accounts/{stack.account_sid}/Recordings.json"
        with service:
            service.start()
            auth = {"Authorization": f"Bearer {stack.ingest_token}", "Content-Type": "audio/x-wav"}

            def ingest() -> float:
                url = f"{service.base_url}{ingest_url}?CallSid={new_sid('CA')}"
                return _curl("POST", url, wav, auth)

            def put() -> float:
                return _curl("PUT", put_url, wav, {"Content-Type": "audio/x-wav"})

            ingest(), put()  # warm up both sides
            ingests: list[float] = []
            puts: list[float] = []
            monitor = Monitor({"service": service.pid, "s3": stack.s3.pid}, rss_pid=service.pid)
            with monitor.watch() as watch:
                for i in range(args.rounds):
                    order = (ingest, put) if i % 2 == 0 else (put, ingest)
                    for run in order:
                        (ingests if run is ingest else puts).append(run())

    megabytes = size / 1e6
    ingest_median, put_median = statistics.median(ingests), statistics.median(puts)
    print(
        f"ingest of a {args.seconds} s 8 kHz 16-bit WAV ({megabytes:.1f} MB;"
        f" {args.seconds * BYTES_PER_SECOND} bytes of audio), curl, {args.rounds} rounds each,"
        " interleaved"
    )
    print(
        f"  ingest through `recordings serve`: median {ingest_median * 1000:.0f} ms"
        f" ({megabytes / ingest_median:.0f} MB/s); runs "
        + " ".join(f"{s * 1000:.0f}" for s in ingests)
    )
    print(
        f"  raw presigned PUT to SeaweedFS:    median {put_median * 1000:.0f} ms"
        f" ({megabytes / put_median:.0f} MB/s); runs " + " ".join(f"{s * 1000:.0f}" for s in puts)
    )
    print(f"  ratio (PUT time / ingest time, target >= 0.8): {put_median / ingest_median:.2f}")
    print(
        f"  service RSS: idle {watch.rss_idle / 2**20:.0f} MiB, peak {watch.rss_peak / 2**20:.0f}"
        f" MiB over the rounds ({watch.rss_samples} samples); CPU {watch.cpu_text()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
