#!/usr/bin/env python3
"""A mixed-workload load test of the Recordings API, spread over one or more replicas.

Every client loops until the time is up, each time picking a route by weight and a replica at
random:

- ``list``: the list in every format, with paging and the CallSid / DateCreated filters (the
  filtered answers are checked against the recordings this run seeded);
- ``xml``/``json``: one recording's representation;
- ``wav``: the WAV with a random ``Range`` (or none, or HEAD), bytes checked against the upload;
- ``mp3``: the MP3 (made by the worker after ingest, or on the first request that finds none);
- ``ingest``: a new upload (half of them are later deleted);
- ``delete``: a DELETE (sometimes the old ``POST ?_method=DELETE``) of a recording this run
  ingested, followed by ``gone``: a GET of it on another replica, which must be ``404`` at once.

At the end every recording ingested and not deleted must be listed, with WAV bytes identical
(SHA-256) to the upload, and no deleted one may be listed. A JSON report gives, per route, the
requests, statuses, p50/p90/p99 latency and every unexpected answer.

A ``503`` with ``Retry-After`` is the service's documented backpressure (a full transcoder, one
address's share of streams, a busy storage pool): like a well-behaved client, each one waits as
long as ``Retry-After`` says and repeats the request (an ingest with the same Idempotency-Key),
and the report counts those retries; a request that never succeeds is unexpected. Every client
sends as an address of its own (``X-Forwarded-For``, which the replicas trust from loopback, as
they trust their load balancer).

Against a running stack (e.g. ``recordings dev``; ``set -a; . recordings-dev/dev.env``)::

    python bench/load.py --base-url http://127.0.0.1:8000 --duration 60 --concurrency 200 \\
        [--account AC... --token ...] [--ingest-token ...] --report load.json

Without ``--account`` an account is made with ``recordings accounts create --json`` (the
``RECORDINGS_*`` environment must point at the stack's database). ``--spawn`` starts everything
itself: PostgreSQL and S3 from the dev wheels, ``--replicas`` (default 2) ``recordings serve``
processes sharing them, runs the load against all replicas and stops everything afterwards::

    python bench/load.py --spawn --replicas 2 --concurrency 200 --duration 60 --report load.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import contextvars
import hashlib
import io
import json
import math
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import wave
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROUTES = ("list", "xml", "json", "wav", "mp3", "ingest", "delete", "gone")
DEFAULT_WEIGHTS = {
    "list": 20.0,
    "xml": 12.0,
    "json": 12.0,
    "wav": 26.0,
    "mp3": 10.0,
    "ingest": 11.0,
    "delete": 9.0,
}
API = "/2008-08-01"
MAX_EXAMPLES = 40


# ------------------------------------------------------------------------------------------
# Configuration, audio and bookkeeping
# ------------------------------------------------------------------------------------------


@dataclass
class LoadConfig:
    base_urls: list[str]
    account_sid: str
    auth_token: str
    ingest_token: str
    duration: float = 10.0
    concurrency: int = 50
    seed_recordings: int = 24
    templates: int = 6
    request_timeout: float = 60.0
    rng_seed: int | None = None
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))


def make_wav(seconds: float, seed: int, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM WAV of tones and noise; distinct bytes for each seed."""
    rng = random.Random(seed)
    pitch = rng.choice((350.0, 440.0, 480.0, 620.0, 697.0, 941.0))
    frames = bytearray()
    for i in range(int(seconds * rate)):
        sample = 0.3 * math.sin(2 * math.pi * pitch * i / rate) + rng.uniform(-0.02, 0.02)
        frames += struct.pack("<h", int(max(-1.0, min(1.0, sample)) * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


def new_sid(prefix: str) -> str:
    return prefix + os.urandom(16).hex()


@dataclass
class Rec:
    sid: str
    template: int
    call_sid: str
    day: str | None  # YYYY-MM-DD for seeds, None for "now"
    seed: bool


@dataclass
class RouteStats:
    latencies: list[float] = field(default_factory=list)  # seconds
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: int = 0
    server_errors: int = 0
    busy: int = 0
    transport_errors: int = 0
    retried: int = 0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Unexpected(Exception):
    """An answer the API must not give here."""


# Each simulated client's own address, sent as X-Forwarded-For.
CLIENT_ADDRESS: contextvars.ContextVar[str] = contextvars.ContextVar(
    "client_address", default="10.255.255.1"
)
# How often one request is repeated after 503 + Retry-After before it counts as failed.
MAX_RETRIES = 30


# ------------------------------------------------------------------------------------------
# The load
# ------------------------------------------------------------------------------------------


class Load:
    def __init__(self, cfg: LoadConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.rng_seed)
        self.base = f"{API}/Accounts/{cfg.account_sid}/Recordings"
        credentials = f"{cfg.account_sid}:{cfg.auth_token}".encode()
        self.authorization = "Basic " + base64.b64encode(credentials).decode()
        self.bodies = [
            make_wav(1.0 + (i % 3), seed=self.rng.randrange(1 << 30)) for i in range(cfg.templates)
        ]
        self.digests = [hashlib.sha256(b).hexdigest() for b in self.bodies]
        self.recs: dict[str, Rec] = {}
        self.readable: list[str] = []
        self.doomed: collections.deque[str] = collections.deque()
        self.deleting: set[str] = set()
        self.deleted: set[str] = set()
        # Seeds: fixed calls and days nobody else uses, so filtered lists have exact answers.
        year = self.rng.randrange(1990, 2006)
        self.seed_days = [f"{year}-02-0{d}" for d in (1, 2, 3)]
        self.seed_calls = [new_sid("CA") for _ in range(3)]
        self.stats = {route: RouteStats() for route in ROUTES}
        self.per_replica: collections.Counter[str] = collections.Counter()
        self.examples: list[str] = []
        self.session: aiohttp.ClientSession | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def replica(self, avoid: str | None = None) -> str:
        choices = [u for u in self.cfg.base_urls if u != avoid] or self.cfg.base_urls
        return self.rng.choice(choices)

    async def request(
        self,
        route: str,
        method: str,
        base_url: str,
        path: str,
        *,
        expect: set[int],
        headers: dict[str, str] | None = None,
        auth: bool = False,
        data: bytes | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        """One timed request, repeated after each 503 with Retry-After (waiting as told);
        raises Unexpected for a status outside ``expect``."""
        assert self.session is not None
        stats = self.stats[route]
        headers = {**(headers or {}), "X-Forwarded-For": CLIENT_ADDRESS.get()}
        if auth:
            headers["Authorization"] = self.authorization
        for attempt in range(MAX_RETRIES + 1):
            started = time.perf_counter()
            try:
                async with self.session.request(
                    method,
                    base_url + path,
                    headers=headers,
                    data=data,
                    params=params,
                    allow_redirects=False,
                ) as response:
                    body = await response.read()
                    status = response.status
                    answer_headers = {k.lower(): v for k, v in response.headers.items()}
            except (aiohttp.ClientError, TimeoutError) as exc:
                stats.transport_errors += 1
                stats.statuses["transport"] += 1
                raise Unexpected(f"{route} {method} {path}: {type(exc).__name__}: {exc}") from exc
            finally:
                stats.latencies.append(time.perf_counter() - started)
            stats.statuses[str(status)] += 1
            self.per_replica[base_url] += 1
            retry_after = answer_headers.get("retry-after", "")
            if status == 503 and retry_after.isdigit() and 503 not in expect:
                stats.busy += 1
                if attempt == MAX_RETRIES:
                    break
                await asyncio.sleep(min(int(retry_after), 10) * (0.5 + self.rng.random()))
                continue
            if attempt:
                stats.retried += 1
            if status >= 500:
                stats.server_errors += 1
            if status not in expect:
                raise Unexpected(f"{route} {method} {path}: {status} {body[:200]!r}")
            return status, answer_headers, body
        raise Unexpected(f"{route} {method} {path}: still 503 after {MAX_RETRIES} retries")

    def note(self, route: str, message: str) -> None:
        self.stats[route].unexpected += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(message)

    # -- setup -------------------------------------------------------------------------------

    async def ingest(self, route: str, *, seed: bool, doomed: bool = False) -> Rec:
        template = self.rng.randrange(len(self.bodies))
        if seed:
            index = len([r for r in self.recs.values() if r.seed])
            call = self.seed_calls[index % len(self.seed_calls)]
            day = self.seed_days[(index // len(self.seed_calls)) % len(self.seed_days)]
            params = {
                "CallSid": call,
                "DateCreated": f"{day}T{index % 24:02d}:{self.rng.randrange(60):02d}:07Z",
            }
        else:
            call, day = new_sid("CA"), None
            params = {"CallSid": call}
        _, _, body = await self.request(
            route,
            "POST",
            self.replica(),
            f"/internal/Accounts/{self.cfg.account_sid}/Recordings.json",
            expect={201},
            headers={
                "Authorization": f"Bearer {self.cfg.ingest_token}",
                "Content-Type": "audio/x-wav",
                # A retry after a 503 must not make a second recording.
                "Idempotency-Key": new_sid("IK"),
            },
            data=self.bodies[template],
            params=params,
        )
        made = json.loads(body)
        if made.get("sid") is None or made.get("call_sid") != call:
            raise Unexpected(f"ingest answered {body[:200]!r}")
        rec = Rec(made["sid"], template, call, day, seed)
        self.recs[rec.sid] = rec
        if doomed:
            self.doomed.append(rec.sid)
        else:
            self.readable.append(rec.sid)
        return rec

    async def seed(self) -> None:
        semaphore = asyncio.Semaphore(8)

        async def one() -> None:
            async with semaphore:
                await self.ingest("ingest", seed=True)

        await asyncio.gather(*(one() for _ in range(self.cfg.seed_recordings)))

    # -- operations --------------------------------------------------------------------------

    def expected_seeds(self, *, call: str | None = None, days: list[str] | None = None) -> set[str]:
        return {
            r.sid
            for r in self.recs.values()
            if r.seed and (call is None or r.call_sid == call) and (days is None or r.day in days)
        }

    async def op_list(self) -> None:
        kind = self.rng.random()
        url = self.replica()
        if kind < 0.3:
            fmt = self.rng.choice(["", ".xml", ".json", ".csv"])
            num = self.rng.choice([5, 20, 50])
            _, _, body = await self.request(
                "list", "GET", url, f"{self.base}{fmt}?num={num}", expect={200}, auth=True
            )
            if fmt == ".json":
                if len(json.loads(body)["recordings"]) > num:
                    raise Unexpected("list page larger than its size")
            elif fmt == ".csv":
                if not body.startswith(b"Sid,AccountSid,CallSid"):
                    raise Unexpected(f"csv list starts {body[:60]!r}")
            else:
                ET.fromstring(body)
            return
        if kind < 0.55:
            call = self.rng.choice(self.seed_calls)
            query, expected = f"CallSid={call}", self.expected_seeds(call=call)
        elif kind < 0.8:
            day = self.rng.choice(self.seed_days)
            query, expected = f"DateCreated={day}", self.expected_seeds(days=[day])
        else:
            first, last = sorted(self.rng.sample(self.seed_days, 2))
            days = [d for d in self.seed_days if first <= d <= last]
            query = f"DateCreated>={first}&DateCreated<={last}"
            expected = self.expected_seeds(days=days)
        if self.rng.random() < 0.5:
            # A whole filtered list, exact.
            fmt = self.rng.choice([".json", ".xml"])
            _, _, body = await self.request(
                "list",
                "GET",
                url,
                f"{self.base}{fmt}?{query}&num=1000",
                expect={200},
                auth=True,
            )
            if fmt == ".json":
                got = {r["sid"] for r in json.loads(body)["recordings"]}
            else:
                root = ET.fromstring(body)
                got = {e.text or "" for e in root.iter("Sid")}
            if got != expected:
                raise Unexpected(f"list ?{query}: {len(got)} recordings, expected {len(expected)}")
            return
        # One page of it.
        num = 3
        pages = max(1, math.ceil(len(expected) / num))
        page = self.rng.randrange(pages + 1)  # sometimes one past the last: 404
        status, _, body = await self.request(
            "list",
            "GET",
            url,
            f"{self.base}.json?{query}&num={num}&page={page}",
            expect={404} if expected and page == pages else {200},
            auth=True,
        )
        if status == 404:
            return
        data = json.loads(body)
        sids = {r["sid"] for r in data["recordings"]}
        want = min(num, len(expected) - page * num) if expected else 0
        if data["total"] != len(expected) or not sids <= expected or len(sids) != want:
            raise Unexpected(f"page {page} of ?{query}: {data['total']} total, {len(sids)} items")

    async def op_representation(self, fmt: str) -> None:
        sid = self.rng.choice(self.readable)
        _, _, body = await self.request(
            fmt.lstrip("."), "GET", self.replica(), f"{self.base}/{sid}{fmt}", expect={200}
        )
        if fmt == ".json":
            data = json.loads(body)
            if data["sid"] != sid or data["account_sid"] != self.cfg.account_sid:
                raise Unexpected(f"json of {sid}: {body[:200]!r}")
        else:
            root = ET.fromstring(body)
            if root.findtext("./Recording/Sid") != sid:
                raise Unexpected(f"xml of {sid}: {body[:200]!r}")

    async def op_wav(self) -> None:
        sid = self.rng.choice(self.readable)
        wav = self.bodies[self.recs[sid].template]
        size = len(wav)
        path = f"{self.base}/{sid}" + self.rng.choice(["", ".wav"])
        pick = self.rng.random()
        if pick < 0.05:
            _, headers, body = await self.request("wav", "HEAD", self.replica(), path, expect={200})
            if headers.get("content-length") != str(size) or body:
                raise Unexpected(f"HEAD {sid}: length {headers.get('content-length')}")
            return
        if pick < 0.15:
            _, _, body = await self.request("wav", "GET", self.replica(), path, expect={200})
            if body != wav:
                raise Unexpected(f"WAV of {sid}: {len(body)} bytes differ from the upload")
            return
        shape = self.rng.random()
        if shape < 0.6:
            first = self.rng.randrange(size)
            last = min(size - 1, first + self.rng.randrange(1, 65536))
            header = f"bytes={first}-{last}"
        elif shape < 0.8:
            first, last = self.rng.randrange(size), size - 1
            header = f"bytes={first}-"
        else:
            n = self.rng.randrange(1, size + 1)
            first, last = size - n, size - 1
            header = f"bytes=-{n}"
        _, headers, body = await self.request(
            "wav", "GET", self.replica(), path, expect={206}, headers={"Range": header}
        )
        if body != wav[first : last + 1]:
            raise Unexpected(f"{header} of {sid}: wrong bytes ({len(body)})")
        if headers.get("content-range") != f"bytes {first}-{last}/{size}":
            raise Unexpected(f"{header} of {sid}: Content-Range {headers.get('content-range')}")

    async def op_mp3(self) -> None:
        sid = self.rng.choice(self.readable)
        ranged = self.rng.random() < 0.3
        status, headers, body = await self.request(
            "mp3",
            "GET",
            self.replica(),
            f"{self.base}/{sid}.mp3",
            expect={206} if ranged else {200},
            headers={"Range": "bytes=0-1023"} if ranged else None,
        )
        if headers.get("content-type", "").split(";")[0] != "audio/mpeg":
            raise Unexpected(f"mp3 of {sid}: {headers.get('content-type')}")
        if not (body.startswith(b"ID3") or (len(body) > 1 and body[0] == 0xFF)):
            raise Unexpected(f"mp3 of {sid} starts {body[:8]!r}")
        if status == 200 and headers.get("content-length") != str(len(body)):
            raise Unexpected(f"mp3 of {sid}: Content-Length {headers.get('content-length')}")

    async def op_delete(self) -> None:
        if not self.doomed:
            await self.ingest("ingest", seed=False, doomed=True)
            return
        sid = self.doomed.popleft()
        self.deleting.add(sid)
        url = self.replica()
        if self.rng.random() < 0.2:
            await self.request(
                "delete",
                "POST",
                url,
                f"{self.base}/{sid}",
                expect={204},
                auth=True,
                params={"_method": "DELETE"},
            )
        else:
            await self.request(
                "delete", "DELETE", url, f"{self.base}/{sid}", expect={204}, auth=True
            )
        self.deleted.add(sid)
        self.deleting.discard(sid)
        # Gone at once, from every replica and every path.
        fmt = self.rng.choice(["", ".json", ".xml", ".mp3"])
        await self.request(
            "gone", "GET", self.replica(avoid=url), f"{self.base}/{sid}{fmt}", expect={404}
        )

    async def one(self, route: str) -> None:
        if route == "list":
            await self.op_list()
        elif route in ("xml", "json"):
            await self.op_representation("." + route)
        elif route == "wav":
            await self.op_wav()
        elif route == "mp3":
            await self.op_mp3()
        elif route == "ingest":
            await self.ingest("ingest", seed=False, doomed=self.rng.random() < 0.5)
        elif route == "delete":
            await self.op_delete()

    async def client(self, number: int, deadline: float) -> None:
        CLIENT_ADDRESS.set(f"10.{number >> 16 & 255}.{number >> 8 & 255}.{number & 255}")
        routes, weights = list(self.cfg.weights), list(self.cfg.weights.values())
        while time.monotonic() < deadline:
            route = self.rng.choices(routes, weights=weights)[0]
            try:
                await self.one(route)
            except Unexpected as exc:
                self.note(route, str(exc))
            except (ValueError, KeyError, TypeError, ET.ParseError) as exc:
                self.note(route, f"{route}: malformed body: {type(exc).__name__}: {exc}")

    # -- the end -----------------------------------------------------------------------------

    async def listed_sids(self) -> set[str]:
        found: set[str] = set()
        page = 0
        while True:
            _, _, body = await self.request(
                "list",
                "GET",
                self.cfg.base_urls[0],
                f"{self.base}.json?num=1000&page={page}",
                expect={200},
                auth=True,
            )
            data = json.loads(body)
            found |= {r["sid"] for r in data["recordings"]}
            if not data.get("next_page_uri"):
                return found
            page += 1

    async def verify(self) -> dict[str, Any]:
        live = {sid for sid in self.recs if sid not in self.deleted and sid not in self.deleting}
        listed = await self.listed_sids()
        mismatched: list[str] = []
        semaphore = asyncio.Semaphore(16)
        assert self.session is not None

        async def check(i: int, sid: str) -> None:
            async with semaphore:
                url = self.cfg.base_urls[i % len(self.cfg.base_urls)]
                async with self.session.get(f"{url}{self.base}/{sid}") as response:  # type: ignore[union-attr]
                    body = await response.read()
                if (
                    response.status != 200
                    or hashlib.sha256(body).hexdigest() != self.digests[self.recs[sid].template]
                ):
                    mismatched.append(f"{sid}: {response.status}, {len(body)} bytes")

        await asyncio.gather(*(check(i, sid) for i, sid in enumerate(sorted(live))))
        return {
            "live": len(live),
            "deleted": len(self.deleted),
            "checked": len(live),
            "missing_from_list": sorted(live - listed),
            "deleted_but_listed": sorted(self.deleted & listed),
            "wav_mismatch": sorted(mismatched),
            "ok": not (live - listed) and not (self.deleted & listed) and not mismatched,
        }

    def report(self, elapsed: float, verification: dict[str, Any]) -> dict[str, Any]:
        routes = {}
        for route, s in self.stats.items():
            ms = [x * 1000 for x in s.latencies]
            routes[route] = {
                "requests": len(s.latencies),
                "statuses": dict(sorted(s.statuses.items())),
                "p50_ms": round(percentile(ms, 50), 1),
                "p90_ms": round(percentile(ms, 90), 1),
                "p99_ms": round(percentile(ms, 99), 1),
                "max_ms": round(max(ms, default=0.0), 1),
                "unexpected": s.unexpected,
                "server_errors": s.server_errors,
                "transport_errors": s.transport_errors,
                "busy_503": s.busy,
                "retried_to_success": s.retried,
            }
        total = sum(r["requests"] for r in routes.values())
        mp3 = routes["mp3"]["requests"]
        cfg = asdict(self.cfg)
        cfg.pop("auth_token")
        cfg.pop("ingest_token")
        unexpected = sum(r["unexpected"] for r in routes.values())
        server_errors = sum(r["server_errors"] for r in routes.values())
        transport = sum(r["transport_errors"] for r in routes.values())
        return {
            "config": cfg,
            "elapsed_s": round(elapsed, 2),
            "requests": total,
            "requests_per_s": round(total / elapsed, 1) if elapsed else 0.0,
            "per_replica": dict(self.per_replica),
            "routes": routes,
            "unexpected": unexpected,
            "server_errors": server_errors,
            "transport_errors": transport,
            "busy_503": sum(r["busy_503"] for r in routes.values()),
            "retried_to_success": sum(r["retried_to_success"] for r in routes.values()),
            "mp3_busy_503": routes["mp3"]["busy_503"],
            "mp3_busy_fraction": round(routes["mp3"]["busy_503"] / mp3, 4) if mp3 else 0.0,
            "examples": self.examples,
            "verification": verification,
            "ok": unexpected == 0 and server_errors == 0 and transport == 0 and verification["ok"],
        }


async def run_load(cfg: LoadConfig) -> dict[str, Any]:
    """Seed, run the mixed workload for ``cfg.duration`` seconds, verify, report."""
    load = Load(cfg)
    connector = aiohttp.TCPConnector(limit=cfg.concurrency + 32, limit_per_host=0)
    timeout = aiohttp.ClientTimeout(total=cfg.request_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load.session = session
        await load.seed()
        for stats in load.stats.values():  # the seeding is not part of the measurement
            stats.latencies.clear()
            stats.statuses.clear()
        load.per_replica.clear()
        started = time.monotonic()
        deadline = started + cfg.duration
        clients = [
            asyncio.create_task(load.client(number, deadline)) for number in range(cfg.concurrency)
        ]
        done, pending = await asyncio.wait(clients, timeout=cfg.duration + cfg.request_timeout + 30)
        for task in pending:
            task.cancel()
            load.note("list", "a client was still busy long after the deadline")
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            if task.exception() is not None:
                load.note("list", f"client crashed: {task.exception()!r}")
        elapsed = time.monotonic() - started
    # Checked on fresh connections: the load's keep-alive connections sat idle while the last
    # clients finished, and a server may close an idle one just as a client reuses it.
    connector = aiohttp.TCPConnector(limit=32, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        load.session = session
        verification = await load.verify()
    return load.report(elapsed, verification)


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['requests']} requests in {report['elapsed_s']} s "
        f"({report['requests_per_s']}/s) over {len(report['per_replica'])} replicas "
        f"{sorted(report['per_replica'].values())}, concurrency {report['config']['concurrency']}",
        f"{'route':<8}{'requests':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'5xx':>6}{'busy':>6}{'unexp':>7}  statuses",
    ]
    for route, r in report["routes"].items():
        lines.append(
            f"{route:<8}{r['requests']:>9}{r['p50_ms']:>9}{r['p90_ms']:>9}{r['p99_ms']:>9}"
            f"{r['max_ms']:>9}{r['server_errors']:>6}{r['busy_503']:>6}{r['unexpected']:>7}  "
            + " ".join(f"{k}:{v}" for k, v in r["statuses"].items())
        )
    v = report["verification"]
    lines.append(
        f"verification: {v['live']} live checked, {v['deleted']} deleted; "
        f"missing {len(v['missing_from_list'])}, deleted-but-listed "
        f"{len(v['deleted_but_listed'])}, WAV mismatches {len(v['wav_mismatch'])}"
    )
    lines.append(
        f"unexpected {report['unexpected']}, 5xx {report['server_errors']}, transport "
        f"{report['transport_errors']}; 503 with Retry-After {report['busy_503']} (mp3"
        f" {report['mp3_busy_503']}, {report['mp3_busy_fraction']:.2%} of mp3 answers), each"
        f" retried as told: {report['retried_to_success']} requests succeeded after retries"
        f" -> {'OK' if report['ok'] else 'FAILED'}"
    )
    lines += [f"  e.g. {e}" for e in report["examples"][:10]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Running it: an existing stack, or one spawned here
# ------------------------------------------------------------------------------------------

RECORDINGS = str(Path(sys.executable).parent / "recordings")


def create_account(env: dict[str, str] | None = None) -> tuple[str, str]:
    """A fresh account through the operator's CLI."""
    out = subprocess.run(
        [RECORDINGS if Path(RECORDINGS).exists() else "recordings", "accounts", "create", "--json"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    made = json.loads(out.strip().splitlines()[-1])
    return made["account_sid"], made["auth_token"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(urls: list[str], procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    for url, proc in zip(urls, procs, strict=True):
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"replica {url} exited with {proc.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url + "/healthz", timeout=1) as answer:
                    if answer.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica {url} did not become healthy")
            time.sleep(0.1)


@contextlib.contextmanager
def replicas(
    env: dict[str, str], count: int, log_dir: Path, *, workers: int = 1
) -> Iterator[list[str]]:
    """``count`` ``recordings serve`` processes on free loopback ports and ``workers``
    ``recordings worker`` processes beside them, as production runs; stopped on exit."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    logs = []
    try:
        for i in range(workers):
            log = (log_dir / f"worker-{i}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [RECORDINGS, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=log
                )
            )
        for i in range(count):
            port = _free_port()
            log = (log_dir / f"serve-{i}.log").open("wb")
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [RECORDINGS, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        _wait_healthy(urls, procs[workers:], 60)
        for worker in procs[:workers]:
            if worker.poll() is not None:
                raise RuntimeError(f"a worker exited with {worker.returncode}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for log in logs:
            log.close()


def replica_env(settings_env: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECORDINGS_")}
    env.update(settings_env)
    env.update(
        # As production runs: every ingest queues its MP3 for the worker.
        RECORDINGS_TRANSCODE_ON_INGEST="true",
        RECORDINGS_ACCESS_LOG="false",
    )
    return env


@contextlib.contextmanager
def spawned_stack(count: int, keep: bool = False) -> Iterator[tuple[list[str], dict[str, str]]]:
    """PostgreSQL and S3 from the dev wheels, migrated, and ``count`` API replicas."""
    from devstack.dev import stack_settings
    from devstack.servers import EmbeddedPostgres, EmbeddedS3
    from service.migrate import migrate_all
    from service.settings import settings_env

    root = Path(tempfile.mkdtemp(prefix="recordings-load-"))
    postgres = EmbeddedPostgres(root / "postgres")
    s3 = EmbeddedS3(root / "s3")
    try:
        postgres.start()
        s3.start()
        settings = stack_settings(postgres, s3, ingest_token=os.urandom(16).hex())
        asyncio.run(migrate_all(settings))
        env = replica_env(settings_env(settings))
        with replicas(env, count, root) as urls:
            yield urls, env
    finally:
        s3.stop()
        postgres.stop()
        if keep:
            print(f"logs kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", action="append", default=[], help="a replica; repeatable")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--concurrency", type=int, default=200, help="concurrent clients")
    parser.add_argument("--account", help="AccountSid (default: a new one via the CLI)")
    parser.add_argument("--token", help="its AuthToken")
    parser.add_argument(
        "--ingest-token",
        default=os.environ.get("RECORDINGS_INGEST_TOKEN"),
        help="ingest bearer token (default: $RECORDINGS_INGEST_TOKEN)",
    )
    parser.add_argument("--seed-recordings", type=int, default=24)
    parser.add_argument("--rng-seed", type=int)
    parser.add_argument("--request-timeout", type=float, default=60.0)
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--spawn", action="store_true", help="start PostgreSQL, S3 and replicas")
    parser.add_argument("--replicas", type=int, default=2, help="with --spawn")
    parser.add_argument("--keep-logs", action="store_true", help="with --spawn")
    args = parser.parse_args(argv)

    def go(urls: list[str], env: dict[str, str] | None, ingest_token: str) -> dict[str, Any]:
        if args.account and args.token:
            account, token = args.account, args.token
        else:
            account, token = create_account(env)
        cfg = LoadConfig(
            base_urls=[u.rstrip("/") for u in urls],
            account_sid=account,
            auth_token=token,
            ingest_token=ingest_token,
            duration=args.duration,
            concurrency=args.concurrency,
            seed_recordings=args.seed_recordings,
            request_timeout=args.request_timeout,
            rng_seed=args.rng_seed,
        )
        return asyncio.run(run_load(cfg))

    if args.spawn:
        with spawned_stack(args.replicas, keep=args.keep_logs) as (urls, env):
            report = go(urls, env, env["RECORDINGS_INGEST_TOKEN"])
    else:
        if not args.base_url:
            parser.error("--base-url is required without --spawn")
        if not args.ingest_token:
            parser.error("--ingest-token (or RECORDINGS_INGEST_TOKEN) is required")
        report = go(args.base_url, None, args.ingest_token)
    print(format_report(report))
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
