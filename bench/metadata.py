"""Benchmarks 4-5: metadata requests per second vs a raw ASGI app, list latency with filters."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from bench.context import Context
from bench.procs import Monitor, run_client
from bench.profiles import profile_while
from bench.report import Row
from db.listing import count_recordings, list_recordings
from service.faces.v2008.query import parse_list_query

INSTANCE_CONNECTIONS = 64
# Instance GETs (the fast path) against the raw ASGI app: design section 12.
INSTANCE_TARGET = 0.7
LIST_CONNECTIONS = 16


@dataclass
class Load:
    rps: float
    p50: float  # seconds
    p99: float
    requests: int
    errors: int
    cpu: str


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(text)
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[match[2]]
    return float(match[1]) * scale


def run_load(ctx: Context, url: str, *, connections: int, seconds: float, auth: bool) -> Load:
    """wrk (one thread; connections keep-alive) when installed, else bench.client's loop."""
    headers = {}
    if auth:
        pair = f"{ctx.stack.list_account_sid}:{ctx.stack.list_auth_token}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    monitor = Monitor(ctx.groups())
    wrk = shutil.which("wrk") if ctx.use_wrk else None
    if wrk:
        argv = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds:.0f}s",
            "--latency",
            "--timeout",
            "30s",
        ]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        with monitor.watch():
            out = subprocess.run(
                [*argv, url], capture_output=True, text=True, check=True, timeout=seconds + 60
            ).stdout
    else:
        answer = run_client(
            {
                "mode": "load",
                "url": url,
                "connections": connections,
                "seconds": seconds,
                "headers": headers,
            },
            monitor,
        )
    watch = monitor.result
    if wrk:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
        requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
        p50 = _seconds(re.search(r"\s50%\s+(\S+)", out)[1])  # type: ignore[index]
        p99 = _seconds(re.search(r"\s99%\s+(\S+)", out)[1])  # type: ignore[index]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        socket_errors = re.search(r"Socket errors: (.*)", out)
        errors = int(non2xx[1]) if non2xx else 0
        if socket_errors:
            errors += sum(int(n) for n in re.findall(r"\d+", socket_errors[1]))
    else:
        rps, requests = answer["rps"], answer["requests"]
        p50, p99 = answer["p50"], answer["p99"]
        errors = sum(
            n for status, n in answer["statuses"].items() if not str(status).startswith("2")
        )
    return Load(rps, p50, p99, requests, errors, watch.cpu_text())


# --------------------------------------------------------------------------- benchmark 4


async def _pick(ctx: Context) -> tuple[str, str]:
    conn = await asyncpg.connect(ctx.stack.dsn)
    try:
        row = await conn.fetchrow(
            "SELECT sid, call_sid FROM recordings WHERE account_sid = $1 AND deleted_at IS NULL"
            " ORDER BY date_created DESC, sid DESC OFFSET $2 LIMIT 1",
            ctx.stack.list_account_sid,
            ctx.sizes.account_rows // 2,
        )
    finally:
        await conn.close()
    assert row is not None
    return row["sid"], row["call_sid"]


def _same_bytes(ctx: Context, path: str, auth: bool) -> bool:
    creds = (ctx.stack.list_account_sid, ctx.stack.list_auth_token) if auth else None
    bodies = []
    for base in (ctx.service.base_url, ctx.baseline.base_url):
        answer = httpx.get(base + path, auth=creds, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"{base}{path}: {answer.status_code} {answer.text[:300]}")
        bodies.append(answer.content)
    if bodies[0] != bodies[1]:
        ctx.report.note(
            f"4 WARNING: baseline bytes differ for {path}: {bodies[0][:300]!r} "
            f"vs {bodies[1][:300]!r}"
        )
        return False
    return True


def metadata_rps(ctx: Context) -> None:
    sid, _ = asyncio.run(_pick(ctx))
    account = ctx.stack.list_account_sid
    cases = [
        (
            "xml instance GET",
            f"/2008-08-01/Accounts/{account}/Recordings/{sid}.xml",
            False,
            INSTANCE_CONNECTIONS,
        ),
        (
            "2010 json instance GET",
            f"/2010-04-01/Accounts/{account}/Recordings/{sid}.json",
            True,
            INSTANCE_CONNECTIONS,
        ),
        (
            "list first page (XML, 50)",
            f"/2008-08-01/Accounts/{account}/Recordings",
            True,
            LIST_CONNECTIONS,
        ),
    ]
    for name, path, auth, connections in cases:
        same = _same_bytes(ctx, path, auth)
        seconds = ctx.sizes.load_seconds
        service = run_load(
            ctx, ctx.service.base_url + path, connections=connections, seconds=seconds, auth=auth
        )
        baseline = run_load(
            ctx, ctx.baseline.base_url + path, connections=connections, seconds=seconds, auth=auth
        )
        for load, who in ((service, "service"), (baseline, "raw ASGI")):
            ctx.report.note(
                f"4 {name} via {who}: {load.rps:.0f} rps, p50 {load.p50 * 1e3:.2f} ms,"
                f" p99 {load.p99 * 1e3:.2f} ms, {load.requests} requests, {load.errors} errors;"
                f" CPU {load.cpu}"
            )
            if load.errors:
                raise RuntimeError(f"{name} via {who}: {load.errors} errors")
        ctx.report.add(
            Row(
                "4",
                f"{name} at {ctx.sizes.account_rows:,} in account, c={connections}",
                "rps",
                service.rps,
                baseline.rps,
                "raw ASGI, same queries" + ("" if same else " (BYTES DIFFER)"),
                "min" if "instance" in name else "",
                INSTANCE_TARGET if "instance" in name else None,
                note=f"wrk {seconds:.0f} s",
            )
        )
    if ctx.sizes.profile_seconds > 0:
        for name, path, auth, connections in cases:
            key = re.sub(r"\W+", "-", name.split(" (")[0])
            for who, server in (("service", ctx.service), ("baseline", ctx.baseline)):
                url = server.base_url + path

                def once(url: str = url, auth: bool = auth, connections: int = connections) -> Load:
                    return run_load(ctx, url, connections=connections, seconds=2, auth=auth)

                text = profile_while(ctx, server.pid, f"{key}-{who}", once)
                ctx.report.section(f"4 profile: {name}, {who}, c={connections}", text)


# --------------------------------------------------------------------------- benchmark 5


def _plan_summary(plan: dict[str, Any]) -> str:
    nodes = []

    def walk(node: dict[str, Any]) -> None:
        label = node["Node Type"]
        if "Index Name" in node:
            label += f" {node['Index Name']}"
        label += f" rows={node.get('Actual Rows', '?')}"
        if node.get("Actual Loops", 1) > 1:
            label += f"x{node['Actual Loops']}"
        if "Heap Fetches" in node:
            label += f" heap_fetches={node['Heap Fetches']}"
        nodes.append(label)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    hit = plan["Plan"].get("Shared Hit Blocks", 0)
    read = plan["Plan"].get("Shared Read Blocks", 0)
    return f"{plan['Execution Time']:.1f} ms, buffers hit={hit} read={read}: " + " > ".join(nodes)


class _SqlRecorder:
    """Stands in for the pool: notes the SQL the service's query functions would run."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[object]]] = []

    async def fetchval(self, sql: str, *args: object) -> int:
        self.calls.append((sql, list(args)))
        return 0

    async def fetch(self, sql: str, *args: object) -> list[object]:
        self.calls.append((sql, list(args)))
        return []


async def _explain(ctx: Context, query: str) -> tuple[str, str, str]:
    """EXPLAIN ANALYZE of exactly the count and page queries the service runs for ``query``."""
    parsed = parse_list_query(query.encode())
    recorder = _SqlRecorder()
    account = ctx.stack.list_account_sid
    # (The pool type is asyncpg's, untyped: the recorder passes as it.)
    await count_recordings(recorder, account, parsed.filters)
    await list_recordings(
        recorder,
        account,
        parsed.filters,
        limit=parsed.page_size,
        offset=parsed.page * parsed.page_size,
    )
    conn = await asyncpg.connect(ctx.stack.dsn)
    try:
        texts = []
        summaries = []
        for sql, values in recorder.calls:
            await conn.fetch(sql, *values)  # warm
            plan_json = await conn.fetchval(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *values
            )
            summaries.append(_plan_summary(json.loads(plan_json)[0]))
            text = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *values)
            texts.append(f"-- {sql}\n-- args {values}\n" + "\n".join(r[0] for r in text))
    finally:
        await conn.close()
    return summaries[0], summaries[1], "\n\n".join(texts)


def list_latency(ctx: Context) -> None:
    _, call_sid = asyncio.run(_pick(ctx))
    account = ctx.stack.list_account_sid
    base = f"/2008-08-01/Accounts/{account}/Recordings"
    deep = min(1000, ctx.sizes.account_rows // 50 - 1)
    cases = [
        ("first page", ""),
        (f"page {deep}, num=50", f"num=50&page={deep}"),
        ("CallSid", f"CallSid={call_sid}"),
        ("DateCreated=2025-07-01", "DateCreated=2025-07-01"),
        ("DateCreated>=2025-07-01 (half)", "DateCreated%3E=2025-07-01"),
        ("DateCreated<=2025-06-30 (half)", "DateCreated%3C=2025-06-30"),
        ("range 2025-06-01..07", "DateCreated%3E=2025-06-01&DateCreated%3C=2025-06-07"),
    ]
    lines = [f"{'case':32} {'p50 ms':>8} {'p99 ms':>8} {'n':>6}  EXPLAIN ANALYZE count / page"]
    plans = []
    for name, query in cases:
        url = ctx.service.base_url + base + (f"?{query}" if query else "")
        load = run_load(ctx, url, connections=1, seconds=ctx.sizes.latency_seconds, auth=True)
        if load.errors:
            raise RuntimeError(f"list {name}: {load.errors} errors")
        count_plan, page_plan, text = asyncio.run(_explain(ctx, query))
        plans.append(f"==== {name}\n{text}")
        ctx.report.add(
            Row(
                "5",
                f"list p99, {name}",
                "ms",
                load.p99 * 1e3,
                note=f"p50 {load.p50 * 1e3:.2f} ms, n={load.requests}",
            )
        )
        lines.append(
            f"{name:32} {load.p50 * 1e3:8.2f} {load.p99 * 1e3:8.2f} {load.requests:6d}"
            f"  count: {count_plan}\n{'':59}page:  {page_plan}"
        )
    (ctx.out / "explain.txt").write_text("\n\n".join(plans))
    ctx.report.section(
        f"5 list latency at {ctx.sizes.account_rows:,} in account /"
        f" {ctx.sizes.total_rows:,} in all (one connection; plans in {ctx.out / 'explain.txt'})",
        "\n".join(lines),
    )


# --------------------------------------------------------------------------- benchmark 6


def _walk_tokens(ctx: Context, path: str, pages: int) -> str:
    """The URL of page ``pages``, reached as a client does: following next_page_uri."""
    auth = (ctx.stack.list_account_sid, ctx.stack.list_auth_token)
    url = path
    with httpx.Client(base_url=ctx.service.base_url, auth=auth, timeout=60) as http:
        for _ in range(pages):
            answer = http.get(url)
            if answer.status_code != 200:
                raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:300]}")
            url = answer.json()["next_page_uri"]
            if url is None:
                raise RuntimeError(f"the listing ended before page {pages}")
    return str(url)


async def _explain_token_page(ctx: Context, url: str) -> str:
    """EXPLAIN ANALYZE of the keyset query the service runs for a PageToken URL."""
    from urllib.parse import urlsplit

    from db.listing import list_recordings_from
    from service.faces.v2010.query import parse_list_query as parse_2010
    from service.recordings.cursors import decode_page_token

    query = parse_2010(urlsplit(url).query.encode())
    account = ctx.stack.list_account_sid
    conn = await asyncpg.connect(ctx.stack.dsn)
    try:
        salt = await conn.fetchval("SELECT token_salt FROM accounts WHERE sid = $1", account)
        assert query.page_token is not None
        cursor = decode_page_token(bytes(salt), account, query.page_token)
        recorder = _SqlRecorder()
        await list_recordings_from(
            recorder, account, query.filters, limit=query.page_size + 1, after=cursor.key
        )
        sql, values = recorder.calls[0]
        plan_json = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *values)
        return _plan_summary(json.loads(plan_json)[0])
    finally:
        await conn.close()


def token_paging(ctx: Context) -> None:
    """The 2010 list: page 1,000 by PageToken against page 0, beside the 2008 list's offset
    paging measured the same way in the same run."""
    account = ctx.stack.list_account_sid
    deep = min(1000, ctx.sizes.account_rows // 50 - 1)
    first_2010 = f"/2010-04-01/Accounts/{account}/Recordings.json?PageSize=50"
    deep_2010 = _walk_tokens(ctx, first_2010, deep)
    first_2008 = f"/2008-08-01/Accounts/{account}/Recordings.json?num=50"
    deep_2008 = f"{first_2008}&page={deep}"
    cases = (
        ("2010 page 0", first_2010),
        (f"2010 page {deep} (PageToken)", deep_2010),
        ("2008 page 0", first_2008),
        (f"2008 page {deep} (offset)", deep_2008),
    )
    # Warm every case first (plans, the service's code paths, the pages' buffers), so the
    # first one measured does not pay for the rest.
    auth = (account, ctx.stack.list_auth_token)
    with httpx.Client(base_url=ctx.service.base_url, auth=auth, timeout=60) as http:
        for _ in range(20):
            for _, path in cases:
                http.get(path).raise_for_status()
    loads = {}
    for name, path in cases:
        load = run_load(
            ctx,
            ctx.service.base_url + path,
            connections=1,
            seconds=ctx.sizes.latency_seconds,
            auth=True,
        )
        if load.errors:
            raise RuntimeError(f"{name}: {load.errors} errors")
        loads[name] = load
        ctx.report.note(
            f"6 {name}: p50 {load.p50 * 1e3:.2f} ms, p99 {load.p99 * 1e3:.2f} ms,"
            f" n={load.requests}; CPU {load.cpu}"
        )
    t0, td = loads["2010 page 0"], loads[f"2010 page {deep} (PageToken)"]
    o0, od = loads["2008 page 0"], loads[f"2008 page {deep} (offset)"]
    rows = ctx.sizes.account_rows
    for stat in ("p50", "p99"):
        ctx.report.add(
            Row(
                "6",
                f"2010 list {stat}, page {deep} by PageToken vs page 0, {rows:,} in account",
                "ms",
                getattr(td, stat) * 1e3,
                getattr(t0, stat) * 1e3,
                "page 0, same run",
                goal="max",
                target=1.5,
            )
        )
    for stat in ("p50", "p99"):
        ctx.report.add(
            Row(
                "6",
                f"2008 list {stat}, page {deep} by offset vs page 0 (JSON, total counted)",
                "ms",
                getattr(od, stat) * 1e3,
                getattr(o0, stat) * 1e3,
                "page 0, same run",
            )
        )
    plan = asyncio.run(_explain_token_page(ctx, deep_2010))
    ctx.report.section(
        f"6 PageToken paging at {rows:,} in account (one connection)",
        f"page {deep} keyset query: {plan}\nURL: {deep_2010}",
    )
