"""The load generators, run as a process of their own: ``python -m bench.client SPEC_JSON``.

A separate process, so the client never shares the service's interpreter (GIL) or event loop;
it prints one JSON object with what it measured. Modes:

- ``raw``: HTTP/1.1 GETs on plain asyncio (uvloop) sockets, reading straight into one fixed
  buffer (``asyncio.BufferedProtocol``: no per-read allocation, no copies), bodies only counted
  (or hashed when asked). Used for the service, for presigned S3 URLs and for the client's own
  ceiling against a raw ASGI app streaming zeros.
- ``boto``: the direct S3 GET of the design's baseline: the project's own aiobotocore client
  (``storage.client``: same AioConfig, same pool size), read with ``iter_chunks`` of the same
  chunk size the service uses.
- ``load``: a keep-alive request loop over N connections for a fixed time (the fallback when
  ``wrk`` is not installed), with latency percentiles.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop

BUFFER_BYTES = 256 * 1024


@dataclass
class Transfer:
    status: int = 0
    received: int = 0
    seconds: float = 0.0
    first_byte: float = 0.0
    sha256: str | None = None


class _Get(asyncio.BufferedProtocol):
    """One GET on its own connection; the body lands in a shared buffer and is only counted."""

    def __init__(self, request: bytes, buffer: bytearray, *, hash_body: bool) -> None:
        self.request = request
        self.buffer = buffer
        self.view = memoryview(buffer)
        self.head = bytearray()
        self.in_body = False
        self.length = -1
        self.result = Transfer()
        self.hasher = hashlib.sha256() if hash_body else None
        self.done: asyncio.Future[Transfer] = asyncio.get_running_loop().create_future()
        self.transport: Any = None  # uvloop's transports are alike, not asyncio.Transport
        self.started = time.perf_counter()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.transport.write(self.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        if self.in_body:
            self._body(self.view[:nbytes])
            return
        self.head += self.view[:nbytes]
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        self.result.first_byte = time.perf_counter() - self.started
        lines = bytes(self.head[:end]).split(b"\r\n")
        self.result.status = int(lines[0].split()[1])
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                self.length = int(value.strip())
        self.in_body = True
        rest = memoryview(self.head)[end + 4 :]
        self._body(rest)
        rest.release()

    def _body(self, data: memoryview) -> None:
        self.result.received += len(data)
        if self.hasher is not None:
            self.hasher.update(data)
        if self.length >= 0 and self.result.received >= self.length:
            self._finish()

    def _finish(self) -> None:
        if not self.done.done():
            self.result.seconds = time.perf_counter() - self.started
            if self.hasher is not None:
                self.result.sha256 = self.hasher.hexdigest()
            self.done.set_result(self.result)
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if exc is None and self.in_body and self.length < 0:
                self._finish()
            else:
                self.done.set_exception(exc or ConnectionError("closed before the whole body"))


async def raw_get(url: str, buffer: bytearray, *, hash_body: bool = False) -> Transfer:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
        "User-Agent: recordings-bench\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    protocol = _Get(request, buffer, hash_body=hash_body)
    await loop.create_connection(lambda: protocol, host, port)
    return await protocol.done


async def boto_get(storage: Any, key: str, chunk: int) -> Transfer:
    started = time.perf_counter()
    stream = await storage.open_object(key)
    result = Transfer(status=200)
    try:
        first = True
        async for piece in stream.iter_chunks(chunk):
            if first:
                result.first_byte = time.perf_counter() - started
                first = False
            result.received += len(piece)
    finally:
        await stream.aclose()
    result.seconds = time.perf_counter() - started
    return result


@dataclass
class Outcome:
    wall: float
    transfers: list[Transfer]
    cpu: float
    errors: list[str] = field(default_factory=list)


async def streams(spec: dict[str, Any]) -> Outcome:
    """``streams`` concurrent GETs (each target taken in turn), all started together."""
    count = int(spec["streams"])
    targets: list[str] = spec["targets"]
    hash_body = bool(spec.get("hash", False))
    buffer = bytearray(BUFFER_BYTES)
    storage_cm = None
    storage = None
    if spec["mode"] == "boto":
        from storage.client import StorageConfig, open_storage

        storage_cm = open_storage(StorageConfig(**spec["storage"]))
        storage = await storage_cm.__aenter__()
    try:
        if storage is not None:
            # As warm as the service's client: S3 model loaded, pool connections open.
            await asyncio.gather(*(storage.object_exists(targets[0]) for _ in range(count)))
        await go_signal()

        async def one(i: int) -> Transfer:
            target = targets[i % len(targets)]
            if storage is not None:
                return await boto_get(storage, target, int(spec["chunk"]))
            return await raw_get(target, buffer, hash_body=hash_body)

        cpu = time.process_time()
        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu
    finally:
        if storage_cm is not None:
            await storage_cm.__aexit__(None, None, None)
    transfers = [r for r in results if isinstance(r, Transfer)]
    errors = [repr(r) for r in results if not isinstance(r, Transfer)]
    return Outcome(wall, transfers, cpu, errors)


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Keep-alive GETs of one URL over ``connections`` connections for ``seconds``."""
    parts = urlsplit(spec["url"])
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = "".join(f"{k}: {v}\r\n" for k, v in spec.get("headers", {}).items())
    request = f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n{headers}\r\n".encode()
    deadline = time.perf_counter() + float(spec["seconds"])
    latencies: list[float] = []
    statuses: dict[int, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - t)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    cpu = time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(int(spec["connections"]))))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(int(q * len(latencies)), len(latencies) - 1)] if latencies else 0.0

    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50": pct(0.50),
        "p99": pct(0.99),
        "mean": statistics.fmean(latencies) if latencies else 0.0,
        "statuses": statuses,
        "cpu": cpu,
    }


async def go_signal() -> None:
    """Tell the parent we are set up, then wait for its GO (it starts watching CPU then)."""
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["mode"] == "load":
        await go_signal()
        return await load(spec)
    outcome = await streams(spec)
    return {
        "wall": outcome.wall,
        "cpu": outcome.cpu,
        "bytes": sum(t.received for t in outcome.transfers),
        "transfers": [t.__dict__ for t in outcome.transfers],
        "errors": outcome.errors,
    }


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    print(json.dumps(uvloop.run(main(spec))))
