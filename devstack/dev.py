"""``recordings dev``: PostgreSQL and S3 from pip wheels, demo data, and the API, on one machine."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import click
import uvicorn

from db.accounts import fetch_account
from db.listing import ListFilter, list_recordings
from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.accounts.auth import token_matches
from service.accounts.registry import create_account
from service.accounts.sealing import sealer_for
from service.app import create_app
from service.callbacks.dispatcher import run_callbacks
from service.http.server import server_options
from service.ingest.pipeline import Upload, ingest_file
from service.logs import configure_logging, logging_config
from service.metrics import Metrics
from service.migrate import migrate_all
from service.operator_errors import PORT_IN_USE, OperatorError
from service.services import open_services
from service.settings import Settings, settings_env
from service.sids import new_sid
from service.worker import consume

DEMO_SECONDS = (4.0, 9.0, 17.0)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds the stack's secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


class DevStopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP: unwind, so that every server started here is stopped."""


class _Stopper:
    """The handler of the stopping signals.

    While the API serves, a signal asks uvicorn to shut down gracefully (an exception raised in
    a signal handler would land in whichever task was running, a worker's ffmpeg spawn say, and
    be lost there); before and after, it raises DevStopped where the main flow is.
    """

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None
        self.received: str | None = None

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = signal.Signals(signum).name
        if self.server is not None:
            self.server.should_exit = True
        else:
            raise DevStopped(self.received)

    def serve(self, server: uvicorn.Server, serving: Callable[[], None]) -> None:
        """Run ``serving`` with ``server`` as the one to stop; raise DevStopped if signalled."""
        self.server = server
        try:
            serving()
        finally:
            self.server = None
        if self.received:
            raise DevStopped(self.received)


def _port_free(port: int | None, host: str = "127.0.0.1") -> bool:
    if not port:
        return False
    with socket.socket() as probe:
        # As uvicorn binds: a port left in TIME_WAIT by the last run is free to use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's lock; the kernel drops it however this process ends."""
    lock = data_dir / "dev.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            raise OperatorError(
                f"another `recordings dev` (pid {holder}) is using {data_dir}: stop it, or pass"
                " --data-dir",
                PORT_IN_USE,
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)


def _stop_stale_servers(state: dict[str, Any], data_dir: Path) -> None:
    """Stop servers of this data directory that a killed `recordings dev` left running."""
    import psutil

    for name, pid in state.pop("server_pids", {}).items():
        try:
            process = psutil.Process(pid)
            # Only a process that names this data directory is ours: the PID may be reused.
            if str(data_dir) not in " ".join(process.cmdline()):
                continue
            family = [process, *process.children(recursive=True)]
        except psutil.Error:
            continue
        for member in family:
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(family, timeout=10)
        click.echo(f"stopped {name} (pid {pid}), left running by an earlier `recordings dev`")


def _owner_only_folder(data_dir: Path) -> None:
    # As root, PostgreSQL runs as its own system user, which must traverse to its data.
    data_dir.chmod(0o711 if os.geteuid() == 0 else 0o700)


def _owner_only(data_dir: Path) -> None:
    """What an earlier run left readable by others becomes its owner's only."""
    _owner_only_folder(data_dir)
    for root, dirs, files in os.walk(data_dir):
        for name in dirs:
            with contextlib.suppress(OSError):
                path = Path(root, name)
                path.chmod(stat.S_IMODE(path.lstat().st_mode) & 0o700)
        for name in files:
            with contextlib.suppress(OSError):
                path = Path(root, name)
                if not path.is_symlink() and not stat.S_ISSOCK(path.lstat().st_mode):
                    path.chmod(stat.S_IMODE(path.lstat().st_mode) & 0o700)


def _save_state(path: Path, state: dict[str, Any]) -> None:
    _write_private(path, json.dumps(state, indent=2))


def _load_state(path: Path) -> dict[str, Any]:
    if path.exists():
        state: dict[str, Any] = json.loads(path.read_text())
        return state
    return {
        "s3_access_key": "dev" + secrets.token_hex(8),
        "s3_secret_key": secrets.token_hex(20),
        "ingest_token": secrets.token_hex(20),
        "secret_key": secrets.token_hex(32),
    }


def stack_settings(postgres: EmbeddedPostgres, s3: EmbeddedS3, **overrides: Any) -> Settings:
    """Settings that point at these embedded servers (the dev stack, the tests, the benches)."""
    values: dict[str, Any] = {
        "database_url": postgres.dsn,
        "s3_endpoint_url": s3.endpoint_url,
        "s3_bucket": "recordings",
        "s3_access_key_id": s3.access_key,
        "s3_secret_access_key": s3.secret_key,
        "s3_region": "us-east-1",
    }
    values.update(overrides)
    settings = Settings(**values)
    # Resolved once here, so that every process pointed at this stack runs the same ffmpeg.
    return settings.model_copy(update={"ffmpeg": settings.ffmpeg_path})


async def _seed(settings: Settings, state: dict[str, Any]) -> None:
    """The demo account, made once and kept between runs, with a few live recordings."""
    async with open_services(settings) as services:
        known = state.get("account_sid")
        account = await fetch_account(services.pool, known) if known else None
        if account is None:
            made = await create_account(
                services.pool, "Demo account", sealer=sealer_for(settings.secret_key)
            )
            state["account_sid"], state["auth_token"] = made.account_sid, made.auth_token
        state["enforce_media_auth"] = bool(account and account.enforce_media_auth)
        if account is not None and not token_matches(
            state["auth_token"], account.token_salt, account.token_hash
        ):
            # Rotated since it was made: only the operator saw the new one.
            state["auth_token"] = "(rotated: the token `accounts rotate-token` printed)"
        live = await list_recordings(
            services.pool, state["account_sid"], ListFilter(), limit=3, offset=0
        )
        if not live:
            upload = Upload(state["account_sid"], new_sid("CA"))
            with tempfile.TemporaryDirectory() as tmp:
                for i, seconds in enumerate(DEMO_SECONDS):
                    source = write_demo_wav(Path(tmp) / f"demo{i}.wav", seconds, seed=i)
                    live.append(await ingest_file(services, upload, source, Path(tmp)))
        # The banner's examples use a recording that exists now (an earlier run's may be deleted).
        state["recording_sids"] = [r.sid for r in live]


async def _serve_with_worker(
    server: uvicorn.Server, settings: Settings, metrics: Metrics, ready: str
) -> None:
    """The API, an MP3 worker and the callback deliveries in one process, stopping together on
    Ctrl-C."""
    stop = asyncio.Event()
    async with open_services(settings, metrics) as services:
        worker = asyncio.gather(
            consume(services, stop, concurrency=1),
            run_callbacks(services.pool, settings, services.metrics, stop),
        )
        serving = asyncio.create_task(server.serve())
        try:
            # uvicorn offers a flag, not an event, for "listening".
            while not server.started and not serving.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if server.started:
                # Only now: the curl lines work the moment they appear.
                click.echo(ready)
            await serving
        finally:
            stop.set()
            await asyncio.wait_for(worker, timeout=10)


def command_name() -> str:
    """How the user can run `recordings` again: the bare name only when PATH finds this one."""
    invoked = sys.argv[0] if sys.argv and sys.argv[0] else "recordings"
    found = shutil.which("recordings")
    if found and Path(found).resolve() == Path(invoked).resolve():
        return "recordings"
    return invoked


def banner(base: str, state: dict[str, Any], data_dir: Path, command: str) -> str:
    account, token = state["account_sid"], state["auth_token"]
    sid = state["recording_sids"][0] if state.get("recording_sids") else "RE..."
    rec = f"{base}/2008-08-01/Accounts/{account}/Recordings"
    env = data_dir / "dev.env"
    upload = f"{base}/internal/Accounts/{account}/Recordings.json?CallSid={new_sid('CA')}"
    # With enforce-media-auth on, the media lines need the credentials too.
    media = f"curl -u {account}:{token}" if state.get("enforce_media_auth") else "curl"
    return f"""
Recordings is running at {base}

  AccountSid:   {account}
  AuthToken:    {token}
  Ingest token: {state["ingest_token"]}
  Settings:     {env}   (set -a; . {env}; set +a; {command} accounts create)

Try:
  curl -u {account}:{token} {rec}
  curl -u {account}:{token} '{rec}.json?num=2'
  {media} {rec}/{sid}.xml
  {media} -o {sid}.wav {rec}/{sid}
  {media} -H 'Range: bytes=0-99' -o /dev/null -D - {rec}/{sid}.wav
  curl -X POST -H 'Authorization: Bearer {state["ingest_token"]}' \\
       --data-binary @{sid}.wav '{upload}'
  curl -u {account}:{token} -X DELETE {rec}/{sid}

The 2010-04-01 API, through the official libraries with only their base URL changed:
  curl -u {account}:{token} {base}/2010-04-01/Accounts/{account}/Recordings.json
  python: c = twilio.rest.Client("{account}", "{token}", environment={{}})
          c.api.base_url = "{base}"; print([r.sid for r in c.recordings.list(limit=5)])
  node:   const c = require("twilio")("{account}", "{token}"); c.api.baseUrl = "{base}";

In a browser: {rec}.html (the account's list; its AccountSid and AuthToken when asked)
              {rec}/{sid}.html (one recording: player and waveform)

Press Ctrl-C to stop.
"""


def run_dev(data_dir: Path, *, host: str, port: int, log_format: str = "text") -> None:
    """Start everything, serve until interrupted, then stop every child started here."""
    data_dir = data_dir.resolve()
    # Everything made from here on (by this process and the servers it starts) is its user's
    # only: the database's files, the stored audio, the logs, dev.env.
    os.umask(0o077)
    data_dir.mkdir(parents=True, exist_ok=True)
    _owner_only(data_dir)
    # Ctrl-C, SIGTERM and a closed terminal (SIGHUP) all stop what was started.
    stopper = _Stopper()
    stopper.install()
    try:
        with _exclusive(data_dir):
            _run_locked(data_dir, stopper, host=host, port=port, log_format=log_format)
    except DevStopped as stopped:
        click.echo(f"stopped by {stopped}", err=True)


def _run_locked(
    data_dir: Path, stopper: _Stopper, *, host: str, port: int, log_format: str
) -> None:
    # Everything that can be checked is checked before any server starts.
    if not _port_free(port, host):
        raise OperatorError(
            f"port {port} on {host} is in use: stop what listens there, or pass --port",
            PORT_IN_USE,
        )
    state_path = data_dir / "dev-state.json"
    state = _load_state(state_path)
    _stop_stale_servers(state, data_dir)
    ports = {}
    for name in ("pg_port", "s3_port"):
        kept = state.get(name)
        if kept and not _port_free(kept):
            click.echo(f"port {kept} of the last run is taken now; dev.env changes", err=True)
        ports[name] = kept if _port_free(kept) else None
    # Data directories from before these existed get them once, kept from then on.
    state.setdefault("pg_password", secrets.token_hex(20))
    state.setdefault("s3_signing_key", secrets.token_hex(32))
    postgres = EmbeddedPostgres(
        data_dir / "postgres", port=ports["pg_port"], password=state["pg_password"]
    )
    s3 = EmbeddedS3(
        data_dir / "s3",
        port=ports["s3_port"],
        access_key=state["s3_access_key"],
        secret_key=state["s3_secret_key"],
        signing_key=state["s3_signing_key"],
    )
    try:
        click.echo("starting PostgreSQL and S3 ...", err=True)
        state["server_pids"] = {}
        for name, server in (("PostgreSQL", postgres), ("S3", s3)):
            server.start()
            # Recorded at once: a SIGKILL from here on leaves the next run a way to find them.
            state["server_pids"][name] = server.pid
            _save_state(state_path, state)
        state["pg_port"], state["s3_port"] = postgres.port, s3.port
        # Starting PostgreSQL as root opens the path to its data for its system user (r-x for
        # all on each parent): traversal is all it needs.
        _owner_only_folder(data_dir)
        # A data directory from before status callbacks has no secret key yet: made once, kept.
        state.setdefault("secret_key", secrets.token_hex(32))
        settings = stack_settings(
            postgres,
            s3,
            ingest_token=state["ingest_token"],
            log_format=log_format,
            secret_key=state["secret_key"],
            # Callbacks to the developer's own machine (localhost, a LAN address) are the point.
            webhook_allow_private=True,
        )
        configure_logging(settings.log_format)
        env_text = "".join(f"{k}={v}\n" for k, v in settings_env(settings).items())
        _write_private(data_dir / "dev.env", env_text)
        asyncio.run(migrate_all(settings))
        asyncio.run(_seed(settings, state))
        _save_state(state_path, state)
        metrics = Metrics()
        config = uvicorn.Config(
            create_app(settings, metrics),
            host=host,
            port=port,
            loop="uvloop",
            **server_options(settings),
            timeout_graceful_shutdown=5,
            log_config=logging_config(settings.log_format),
        )
        ready = banner(f"http://{host}:{port}", state, data_dir, command_name())
        api = uvicorn.Server(config)
        stopper.serve(api, lambda: asyncio.run(_serve_with_worker(api, settings, metrics, ready)))
    finally:
        # Shielded from a second signal: an interrupted stop would leave servers behind.
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        click.echo("stopping PostgreSQL and S3 ...", err=True)
        s3.stop()
        postgres.stop()
        state.pop("server_pids", None)
        _save_state(state_path, state)
