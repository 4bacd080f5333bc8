"""The embedded PostgreSQL and SeaweedFS launchers of devstack.servers (real servers, no mocks):
loopback only, killed and restarted with their data, stopped without a trace."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from devstack.servers import (
    LOOPBACK,
    SEAWEED_GRPC_OFFSET,
    EmbeddedPostgres,
    EmbeddedS3,
)

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="process checks read /proc (Linux only)"
)

BUCKET = "embedded-test"


# --------------------------------------------------------------------------- /proc helpers


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (index 0 is the state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw[raw.rindex(")") + 2 :].split()


def _identity(pid: int) -> str | None:
    """Start time of a live (non-zombie) process, so a recycled PID is not mistaken for it."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return fields[19]


def _process_tree(root: int) -> dict[int, str]:
    """PID -> start time of `root` and all its live descendants, plus its process group.

    PostgreSQL backends setsid() into their own process groups, so follow parent links too.
    """
    parents: dict[int, tuple[int, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X"):
                parents[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[19])
    tree = {pid: started for pid, (_, pgid, started) in parents.items() if pgid == root}
    if root in parents:
        tree[root] = parents[root][2]
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, started) in parents.items():
            if ppid in tree and pid not in tree:
                tree[pid] = started
                grew = True
    return tree


def _still_running(processes: dict[int, str]) -> list[int]:
    return [pid for pid, started in processes.items() if _identity(pid) == started]


def _processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _identity(int(entry.name)) is not None:
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
    return found


def _decode_address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1])
    words = [raw[i : i + 4][::-1] for i in range(0, 16, 4)]
    return socket.inet_ntop(socket.AF_INET6, b"".join(words))


def _bound_sockets(pids: Collection[int]) -> set[tuple[str, str, int]]:
    """(protocol, address, port) of every listening TCP or bound UDP socket the PIDs hold."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(FileNotFoundError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[len("socket:[") : -1])
    found: set[tuple[str, str, int]] = set()
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if inode not in inodes or (protocol.startswith("tcp") and state != "0A"):
                    continue
                address, port_hex = local.rsplit(":", 1)
                found.add((protocol, _decode_address(address), int(port_hex, 16)))
    return found


def _assert_loopback_only(pids: Collection[int], expected_ports: Collection[int]) -> None:
    bound = _bound_sockets(pids)
    assert {port for _, _, port in bound} == set(expected_ports), bound
    assert {address for _, address, _ in bound} == {LOOPBACK}, bound


def _assert_refused(port: int) -> None:
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((LOOPBACK, port), timeout=2).close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def pg_root() -> Iterator[Path]:
    """A directory for PostgreSQL data outside pytest's tmp_path.

    As root the server runs as an unprivileged user that must traverse every parent directory,
    but each new pytest session chmods /tmp/pytest-of-root back to 0700, which makes a server
    of a concurrently running session PANIC.
    """
    path = Path(tempfile.mkdtemp(prefix="test-embedded-pg-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def pg(pg_root: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(pg_root / "pgdata")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[EmbeddedS3]:
    server = EmbeddedS3(tmp_path / "s3data", access_key="test-key", secret_key="test-secret")
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- PostgreSQL


async def _pg_execute(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def _pg_fetch(dsn: str, query: str) -> list[Any]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


def test_postgres_query_kill_and_restart(pg: EmbeddedPostgres) -> None:
    assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert asyncio.run(_pg_fetch(pg.dsn, "SELECT current_user, 40 + 2")) == [("postgres", 42)]
    asyncio.run(
        _pg_execute(
            pg.dsn,
            "CREATE TABLE survivors (id int PRIMARY KEY, name text NOT NULL)",
            "INSERT INTO survivors VALUES (1, 'before-kill')",
        )
    )
    first_pid = pg.pid
    assert first_pid is not None
    tree = _process_tree(first_pid)
    assert first_pid in tree and len(tree) > 1  # postmaster plus its auxiliary processes
    _assert_loopback_only(tree, [pg.port])

    pg.kill()

    assert pg.pid is None
    assert _still_running(tree) == []
    _assert_refused(pg.port)

    port = pg.port
    pg.start()

    assert pg.port == port
    assert pg.pid is not None and pg.pid != first_pid
    rows = asyncio.run(_pg_fetch(pg.dsn, "SELECT id, name FROM survivors"))
    assert rows == [(1, "before-kill")]


def test_postgres_stop_is_clean_idempotent_and_data_persists(pg_root: Path) -> None:
    data_dir = pg_root / "pgdata"
    with EmbeddedPostgres(data_dir) as server:
        asyncio.run(
            _pg_execute(server.dsn, "CREATE TABLE kept (v text)", "INSERT INTO kept VALUES ('x')")
        )
        pid = server.pid
        assert pid is not None
        tree = _process_tree(pid)
        assert pid in tree
    assert server.pid is None
    assert _still_running(tree) == []
    _assert_refused(server.port)
    server.stop()  # idempotent

    # A new instance on the same data dir (and a new port) sees the data: no second initdb.
    with EmbeddedPostgres(data_dir) as again:
        assert asyncio.run(_pg_fetch(again.dsn, "SELECT v FROM kept")) == [("x",)]


def test_postgres_failed_start_leaves_nothing_running(pg_root: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind((LOOPBACK, 0))
        blocker.listen()
        busy_port = blocker.getsockname()[1]
        server = EmbeddedPostgres(pg_root / "pgdata", port=busy_port)
        try:
            with pytest.raises(RuntimeError, match="postgres: exited during startup") as info:
                server.start()
            assert "could not" in str(info.value)  # the log tail is part of the message
            assert server.pid is None
            assert _processes_mentioning(str(server.data_dir)) == []
        finally:
            server.stop()


# --------------------------------------------------------------------------- SeaweedFS S3


def _s3_client(server: EmbeddedS3, secret_key: str | None = None) -> Any:
    return get_session().create_client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region_name,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key if secret_key is None else secret_key,
        config=AioConfig(retries={"max_attempts": 2, "mode": "standard"}),
    )


async def _s3_put(server: EmbeddedS3, key: str, body: bytes) -> None:
    async with _s3_client(server) as client:
        await client.create_bucket(Bucket=BUCKET)
        await client.put_object(Bucket=BUCKET, Key=key, Body=body)


async def _s3_get(server: EmbeddedS3, key: str, secret_key: str | None = None) -> bytes:
    async with _s3_client(server, secret_key) as client:
        response = await client.get_object(Bucket=BUCKET, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
        return data


def test_s3_roundtrip_auth_kill_and_restart(s3: EmbeddedS3) -> None:
    assert s3.endpoint_url == f"http://127.0.0.1:{s3.port}"
    assert (s3.access_key, s3.secret_key) == ("test-key", "test-secret")

    body = b"\x00recording bytes\xff" * 1000
    asyncio.run(_s3_put(s3, "rec/one.wav", body))
    assert asyncio.run(_s3_get(s3, "rec/one.wav")) == body

    with pytest.raises(ClientError) as info:
        asyncio.run(_s3_get(s3, "rec/one.wav", secret_key="not-the-secret"))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    first_pid = s3.pid
    assert first_pid is not None
    tree = _process_tree(first_pid)
    assert first_pid in tree
    http_ports = list(s3.ports.values())
    _assert_loopback_only(tree, http_ports + [p + SEAWEED_GRPC_OFFSET for p in http_ports])

    s3.kill()

    assert s3.pid is None
    assert _still_running(tree) == []
    _assert_refused(s3.port)

    endpoint = s3.endpoint_url
    s3.start()

    assert s3.endpoint_url == endpoint
    assert s3.pid is not None and s3.pid != first_pid
    assert asyncio.run(_s3_get(s3, "rec/one.wav")) == body


def test_s3_stop_is_clean_and_idempotent(tmp_path: Path) -> None:
    with EmbeddedS3(tmp_path / "s3data") as server:
        pid = server.pid
        assert pid is not None
        tree = _process_tree(pid)
        asyncio.run(_s3_put(server, "k", b"v"))
    assert server.pid is None
    assert _still_running(tree) == []
    for port in server.ports.values():
        _assert_refused(port)
    assert not Path(f"/tmp/seaweedfs-s3-{server.port}.sock").exists()
    server.stop()  # idempotent
