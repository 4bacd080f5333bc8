"""Benchmark 7: accel delivery. A WAV through nginx (deploy/nginx.conf) in front of an accel-mode
service, against a direct GET of the same object through the same nginx (a presigned URL on a
location that proxies to storage), 1 and N streams; and the service's CPU seconds per GB served
in accel mode against proxy mode behind the same nginx configuration."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from bench.context import Context
from bench.media import MB, Recording, _check, _row
from bench.procs import Monitor, run_client
from bench.report import Row
from bench.stack import ROOT, ServerProcess, service_process
from devstack.servers import free_port
from service.services import storage_config
from storage.client import open_storage

ACCEL_TARGET = 0.9
NGINX_CONF = ROOT / "deploy" / "nginx.conf"


def _nginx_conf(workdir: Path, listen: int, api_port: int, s3_port: int) -> Path:
    """deploy/nginx.conf on loopback, both upstream servers the one API, plus /_direct/: the
    same object straight from storage through the same nginx (the baseline)."""
    text = NGINX_CONF.read_text()
    text, count = re.subn(
        r"server\s+(\S+:\d+)([^;]*);",
        lambda m: f"server 127.0.0.1:{api_port}{m[2].replace(' resolve', '')};",
        text,
    )
    assert count == 2
    text, count = re.subn(r"listen\s+\d+;", f"listen 127.0.0.1:{listen};", text)
    assert count == 1
    text = text.replace("access_log /dev/stdout upstreamlog;", "access_log off;")
    direct = (
        "        location /_direct/ {\n"
        f"            proxy_pass http://127.0.0.1:{s3_port}/;\n"
        "            proxy_pass_request_headers off;\n"
        '            proxy_set_header Connection "";\n'
        "        }\n\n"
        "        location = /healthz {"
    )
    text = text.replace("        location = /healthz {", direct, 1)
    path = workdir / "nginx.conf"
    path.write_text(text)
    return path


@contextmanager
def _nginx(workdir: Path, api_port: int, s3_port: int) -> Iterator[tuple[str, int]]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    workdir.mkdir(parents=True, exist_ok=True)
    listen = free_port()
    conf = _nginx_conf(workdir, listen, api_port, s3_port)
    with (workdir / "nginx.log").open("ab") as log:
        proc = subprocess.Popen(
            [binary, "-c", str(conf), "-e", "stderr", "-g", f"daemon off; pid {workdir}/pid;"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", listen), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"nginx did not start; see {workdir}/nginx.log") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{listen}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _presign(ctx: Context, key: str) -> str:
    async with open_storage(storage_config(ctx.stack.settings())) as storage:
        return await storage.presign_internal_get(key, 3600)


def _rates(
    ctx: Context, url: str, size: int, monitor_groups: dict[str, int]
) -> tuple[float, float, dict[str, float], float]:
    """Median MB/s of 1 stream, of N streams; CPU seconds per group and bytes of the N runs."""
    _check(run_client({"mode": "raw", "targets": [url], "streams": 1}), size, 1, url)
    single = []
    for _ in range(ctx.sizes.repeats):
        answer = run_client({"mode": "raw", "targets": [url], "streams": 1})
        _check(answer, size, 1, url)
        single.append(size / answer["transfers"][0]["seconds"] / MB)
    streams = ctx.sizes.streams
    many = []
    cpu: dict[str, float] = {}
    served = 0.0
    for _ in range(ctx.sizes.repeats_many):
        monitor = Monitor(monitor_groups)
        answer = run_client({"mode": "raw", "targets": [url], "streams": streams}, monitor)
        _check(answer, size, streams, f"{url} x{streams}")
        many.append(answer["bytes"] / answer["wall"] / MB)
        for name, seconds in monitor.result.cpu.items():
            cpu[name] = cpu.get(name, 0.0) + seconds
        served += answer["bytes"]
    return statistics.median(single), statistics.median(many), cpu, served


@contextmanager
def _service(ctx: Context, mode: str) -> Iterator[ServerProcess]:
    with service_process(ctx.stack, ctx.stack.root) as service:
        service.name = f"service-{mode}"
        service.log_path = ctx.stack.root / f"service-{mode}.log"
        service.env["RECORDINGS_MEDIA_DELIVERY"] = mode
        service.env["RECORDINGS_MAX_STREAMS_PER_CLIENT"] = "1000"
        service.start()
        yield service


def accel_delivery(ctx: Context, recs: dict[str, Recording]) -> None:
    rec = recs["hour"]
    row = asyncio.run(_row(ctx.stack.dsn, rec.sid))
    s3_port = urlsplit(ctx.stack.s3.endpoint_url).port or 80
    path = f"/2008-08-01/Accounts/{ctx.stack.account_sid}/Recordings/{rec.sid}.wav"
    with ExitStack() as stack:
        accel_service = stack.enter_context(_service(ctx, "accel"))
        # Its own proxy-mode service: behind nginx every stream comes from one address, which
        # RECORDINGS_MAX_STREAMS_PER_CLIENT would hold to 64 (accel mode has no such limit).
        proxy_service = stack.enter_context(_service(ctx, "proxy"))
        accel_base, accel_nginx = stack.enter_context(
            _nginx(ctx.out / "nginx-accel", accel_service.port, s3_port)
        )
        proxy_base, proxy_nginx = stack.enter_context(
            _nginx(ctx.out / "nginx-proxy", proxy_service.port, s3_port)
        )
        presigned = urlsplit(asyncio.run(_presign(ctx, row["wav_key"])))
        direct_url = f"{accel_base}/_direct{presigned.path}?{presigned.query}"
        groups = {
            "accel-service": accel_service.pid,
            "proxy-service": proxy_service.pid,
            "nginx-accel": accel_nginx,
            "nginx-proxy": proxy_nginx,
            "s3": ctx.stack.s3.pid or 0,
        }
        groups = {k: v for k, v in groups.items() if v}
        figures = {
            "accel": _rates(ctx, accel_base + path, rec.size, groups),
            "direct": _rates(ctx, direct_url, rec.size, groups),
            "proxy": _rates(ctx, proxy_base + path, rec.size, groups),
        }
    what = f"WAV {rec.label} through nginx"
    streams = ctx.sizes.streams
    accel, direct, proxy = figures["accel"], figures["direct"], figures["proxy"]
    baseline = "direct S3 GET through the same nginx"
    ctx.report.add(
        Row(
            "7",
            f"{what}, accel, 1 stream",
            "MB/s",
            accel[0],
            direct[0],
            baseline,
            "min",
            ACCEL_TARGET,
            f"median of {ctx.sizes.repeats}",
        )
    )
    ctx.report.add(
        Row(
            "7",
            f"{what}, accel, {streams} streams",
            "MB/s",
            accel[1],
            direct[1],
            baseline,
            "min",
            ACCEL_TARGET,
            f"median of {ctx.sizes.repeats_many}, aggregate",
        )
    )
    ctx.report.add(
        Row("7", f"{what}, proxy mode, {streams} streams", "MB/s", proxy[1], direct[1], baseline)
    )
    gb_accel = accel[3] / 1e9
    gb_proxy = proxy[3] / 1e9
    accel_cpu = accel[2].get("accel-service", 0.0) / gb_accel
    proxy_cpu = proxy[2].get("proxy-service", 0.0) / gb_proxy
    ctx.report.add(
        Row(
            "7",
            f"service CPU per GB served ({streams} streams), accel vs proxy mode",
            "s/GB",
            accel_cpu,
            proxy_cpu,
            "proxy mode, same run",
        )
    )
    for name, (one, many, cpu, served) in figures.items():
        shares = ", ".join(f"{k} {v / (served / 1e9):.2f} s/GB" for k, v in cpu.items() if v)
        ctx.report.note(
            f"7 {name}: 1 stream {one:.0f} MB/s, {streams} streams {many:.0f} MB/s;"
            f" CPU over the {streams}-stream runs ({served / 1e9:.1f} GB): {shares}"
        )
