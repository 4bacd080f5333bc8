"""Metadata GETs through PgBouncer (transaction pooling) against PostgreSQL directly, same run.

bench's stack and listing data set (``--rows`` recordings, a tenth in the listing account), one
`recordings serve` reaching PostgreSQL directly and one through Debian's PgBouncer 1.18 (its
sessions direct, as RECORDINGS_DATABASE_DIRECT_URL says), each with the default pool of 20;
PgBouncer has ``--server-connections`` of its own. The instance GET and the list's first page
are loaded in turns (direct and pooled, in an order that alternates, ``--rounds`` times); the
figure is the median of the rounds' ratios. Target: through PgBouncer >= 0.9x direct.

    python -m bench.pgbouncer --rows 100000 --seconds 4 --rounds 9
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import statistics
import tempfile
from pathlib import Path

import asyncpg

from bench.dataset import load
from bench.procs import Monitor, run_client
from bench.stack import VENV_BIN, ServerProcess, running_stack
from devstack.pgbouncer import running_pgbouncer
from devstack.servers import free_port
from service.settings import settings_env

TARGET = 0.9


async def _pick(dsn: str, account: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        sid = await conn.fetchval(
            "SELECT sid FROM recordings WHERE account_sid = $1 ORDER BY date_created DESC"
            " OFFSET 100 LIMIT 1",
            account,
        )
    finally:
        await conn.close()
    assert isinstance(sid, str)
    return sid


def _rps(url: str, headers: dict[str, str], connections: int, seconds: float) -> tuple[float, int]:
    answer = run_client(
        {
            "mode": "load",
            "url": url,
            "connections": connections,
            "seconds": seconds,
            "headers": headers,
        }
    )
    bad = sum(n for status, n in answer["statuses"].items() if not str(status).startswith("2"))
    if bad:
        raise RuntimeError(f"{url}: {bad} answers that are not 2xx: {answer['statuses']}")
    return float(answer["rps"]), sum(answer["statuses"].values())


def _parts(rounds: list[dict[str, float]]) -> str:
    """Each process's median CPU per request over the rounds, e.g. ``serve 410 us ...``."""
    return ", ".join(
        f"{name} {statistics.median(r.get(name, 0.0) for r in rounds):.0f} us" for name in rounds[0]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pgbouncer", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--server-connections", type=int, default=20)
    args = parser.parse_args(argv)
    with running_stack() as stack, tempfile.TemporaryDirectory() as work:
        account = stack.list_account_sid
        asyncio.run(
            load(stack.dsn, account, total=args.rows, in_account=args.rows // 10, other_accounts=50)
        )
        sid = asyncio.run(_pick(stack.dsn, account))
        pair = f"{account}:{stack.list_auth_token}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        with running_pgbouncer(stack.postgres, pool_size=args.server_connections) as bouncer:
            servers = {}
            for name, overrides in (
                ("direct", {}),
                ("pgbouncer", {"database_url": bouncer.dsn, "database_direct_url": stack.dsn}),
            ):
                port = free_port()
                env = settings_env(stack.settings(**overrides))
                servers[name] = ServerProcess(
                    name,
                    [
                        str(VENV_BIN / "recordings"),
                        "serve",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                    ],
                    port=port,
                    env=env,
                    cwd=Path(work),
                ).start()
            try:
                cases = {
                    "2010 json instance GET (c=64)": (
                        f"/2010-04-01/Accounts/{account}/Recordings/{sid}.json",
                        64,
                    ),
                    "2010 list first page, 50 (c=16)": (
                        f"/2010-04-01/Accounts/{account}/Recordings.json",
                        16,
                    ),
                }
                # The CPU each side costs per request (the service, PostgreSQL and, on its
                # side, PgBouncer): a figure the machine's other load barely moves, where
                # throughput moves with it.
                postgres_pid = stack.postgres.pid
                assert postgres_pid is not None
                groups = {
                    "direct": {"serve": servers["direct"].pid, "postgres": postgres_pid},
                    "pgbouncer": {
                        "serve": servers["pgbouncer"].pid,
                        "postgres": postgres_pid,
                        "pgbouncer": bouncer.pid,
                    },
                }
                for case, (path, connections) in cases.items():
                    measured: dict[str, list[float]] = {"direct": [], "pgbouncer": []}
                    cpu: dict[str, list[float]] = {"direct": [], "pgbouncer": []}
                    parts: dict[str, list[dict[str, float]]] = {"direct": [], "pgbouncer": []}
                    ratios = []
                    for round_ in range(args.rounds):
                        # Each round measures both, in turns that alternate, and gives a ratio
                        # of its own: load from elsewhere on the machine drifts between rounds
                        # more than within one.
                        order = list(servers.items())
                        if round_ % 2:
                            order.reverse()
                        for name, server in order:
                            with Monitor(groups[name]).watch() as watch:
                                rps, requests = _rps(
                                    server.base_url + path, headers, connections, args.seconds
                                )
                            measured[name].append(rps)
                            cpu[name].append(1e6 * sum(watch.cpu.values()) / max(requests, 1))
                            parts[name].append(
                                {k: 1e6 * v / max(requests, 1) for k, v in watch.cpu.items()}
                            )
                        ratios.append(measured["pgbouncer"][-1] / measured["direct"][-1])
                    direct = statistics.median(measured["direct"])
                    pooled = statistics.median(measured["pgbouncer"])
                    cpu_direct = statistics.median(cpu["direct"])
                    cpu_pooled = statistics.median(cpu["pgbouncer"])
                    print(
                        f"{case} at {args.rows // 10:,} in account: direct {direct:.0f} rps,"
                        f" through PgBouncer {pooled:.0f} rps: {statistics.median(ratios):.2f}x"
                        f" (median of the rounds' ratios; target >= {TARGET}x; ratios"
                        f" {[round(r, 2) for r in ratios]}; direct"
                        f" {[round(r) for r in measured['direct']]},"
                        f" pgbouncer {[round(r) for r in measured['pgbouncer']]});"
                        f" CPU per request {cpu_direct:.0f} us direct, {cpu_pooled:.0f} us"
                        f" through PgBouncer: {cpu_direct / cpu_pooled:.2f}x"
                        f" ({_parts(parts['direct'])}; {_parts(parts['pgbouncer'])})",
                        flush=True,
                    )
            finally:
                for server in servers.values():
                    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
