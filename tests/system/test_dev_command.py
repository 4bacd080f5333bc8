"""`recordings dev` as a new user meets it: started, stopped by any signal, killed, doubled."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.demo import write_demo_wav
from devstack.servers import free_port
from service.operator_errors import PORT_IN_USE
from tests.support.receivers import Receiver, wait_until
from tests.support.stack import RECORDINGS

READY = "Press Ctrl-C to stop."


class Dev:
    """One `recordings dev` process, its output in a file."""

    def __init__(self, data_dir: Path, port: int, env_extra: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.output = data_dir.parent / f"dev-{port}-{time.monotonic_ns()}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RECORDINGS_", "AWS_"))}
        env.update(env_extra or {})
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(
                [RECORDINGS, "dev", "--data-dir", str(data_dir), "--port", str(port)],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.text:
            assert self.proc.poll() is None, self.text
            assert time.monotonic() < deadline, self.text
            time.sleep(0.2)

    def family(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def ports(self) -> list[int]:
        state = json.loads((self.data_dir / "dev-state.json").read_text())
        return [self.port, int(state["pg_port"]), int(state["s3_port"])]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@contextmanager
def running_dev(
    data_dir: Path, port: int | None = None, env_extra: dict[str, str] | None = None
) -> Iterator[Dev]:
    dev = Dev(data_dir, port or free_port(), env_extra)
    try:
        yield dev
    finally:
        dev.stop()
        # Whatever a failed test left behind of this data directory goes too.
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if str(data_dir) in cmdline and proc.pid != os.getpid():
                try:
                    proc.kill()
                except psutil.Error:
                    pass


def base_of(dev: Dev) -> str:
    return f"http://127.0.0.1:{dev.port}/2008-08-01/Accounts/"


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def assert_all_gone(family: list[psutil.Process], ports: list[int]) -> None:
    _, alive = psutil.wait_procs(family, timeout=30)
    assert not alive, [p.pid for p in alive]
    assert all(port_free(port) for port in ports), ports


def assert_dev_delivers_signed_callbacks(data_dir: Path, port: int, tmp_path: Path) -> None:
    """dev.env carries a generated RECORDINGS_SECRET_KEY and allows callbacks to this machine;
    the in-process worker delivers an ingest's callback signed with the demo account's token."""
    env = dict(line.split("=", 1) for line in (data_dir / "dev.env").read_text().splitlines())
    assert len(env["RECORDINGS_SECRET_KEY"]) >= 32
    assert env["RECORDINGS_WEBHOOK_ALLOW_PRIVATE"] == "true"
    state = json.loads((data_dir / "dev-state.json").read_text())
    wav = write_demo_wav(tmp_path / "callback.wav", 1.0).read_bytes()
    with Receiver() as receiver:
        response = httpx.post(
            f"http://127.0.0.1:{port}/internal/Accounts/{state['account_sid']}/Recordings.json",
            params={"CallSid": "CA" + "1" * 32, "RecordingStatusCallback": receiver.url},
            content=wav,
            headers={"Authorization": f"Bearer {state['ingest_token']}"},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        wait_until(receiver.answered, what="the dev stack's callback")
        [got] = receiver.received
    assert got.params["RecordingSid"] == response.json()["sid"]
    assert got.signed_by(state["auth_token"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_dev_stops_every_server_it_started_whatever_stops_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    # One run logs JSON: RECORDINGS_LOG_FORMAT is honoured (text is dev's default).
    json_logs = sig == signal.SIGHUP
    env = {"RECORDINGS_LOG_FORMAT": "json"} if json_logs else {}
    with running_dev(tmp_path / "data", env_extra=env) as dev:
        dev.wait_ready()
        logs = [line for line in dev.text.splitlines() if "uvicorn" in line]
        assert logs and all(line.startswith("{") == json_logs for line in logs), logs
        family, ports = dev.family(), dev.ports()
        assert len(family) >= 3  # dev, PostgreSQL (and its backends), SeaweedFS
        env_file = dev.data_dir / "dev.env"
        assert env_file.stat().st_mode & 0o077 == 0
        if sig == signal.SIGTERM:
            assert_dev_delivers_signed_callbacks(dev.data_dir, dev.port, tmp_path)
            # The in-process worker's transcodes of the demo recordings appear in /metrics.
            deadline = time.monotonic() + 180  # generous: CI machines are shared
            metrics = ""
            while time.monotonic() < deadline:
                metrics = httpx.get(f"http://127.0.0.1:{dev.port}/metrics", timeout=10).text
                if re.search(r'recordings_transcodes_total\{outcome="ok"\} [1-9]', metrics):
                    break
                time.sleep(0.5)
            assert re.search(r'recordings_transcodes_total\{outcome="ok"\} [1-9]', metrics)
        dev.proc.send_signal(sig)
        dev.proc.wait(timeout=90)
        assert_all_gone(family, ports)


def test_dev_after_sigkill_stops_the_servers_left_behind_and_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_dev(data_dir) as first:
        first.wait_ready()
        assert f"curl {base_of(first)}" in first.text  # public media: no credentials needed
        account = json.loads((data_dir / "dev-state.json").read_text())["account_sid"]
        subprocess.run(
            f"set -a; . {data_dir}/dev.env; set +a;"
            f" {RECORDINGS} accounts set --enforce-media-auth {account}",
            shell=True,
            check=True,
            capture_output=True,
        )
        servers = first.family()[1:]
        first.proc.kill()
        first.proc.wait()
        assert any(p.is_running() for p in servers)  # what SIGKILL leaves behind
        ports = first.ports()
        with running_dev(data_dir, first.port) as second:
            second.wait_ready()
            assert "left running by an earlier `recordings dev`" in second.text
            # The demo account now enforces media auth: every media line carries credentials.
            media_lines = [
                line
                for line in second.text.splitlines()
                if "curl" in line and "Recordings/RE" in line
            ]
            assert media_lines and all(" -u AC" in line for line in media_lines), media_lines
            assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in servers)
            # The servers kept their ports, so dev.env stays true across restarts.
            assert second.ports() == ports
            family = second.family()
            second.proc.send_signal(signal.SIGTERM)
            second.proc.wait(timeout=90)
            assert_all_gone(family, ports)


def test_a_taken_port_or_data_directory_fails_before_any_server_starts(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        result = subprocess.run(
            [RECORDINGS, "dev", "--data-dir", str(tmp_path / "data"), "--port", str(taken)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == PORT_IN_USE
    assert result.stderr.strip().splitlines() == [
        f"recordings: port {taken} on 127.0.0.1 is in use: stop what listens there, or pass --port"
    ]
    assert "starting PostgreSQL" not in result.stdout + result.stderr
    assert not (tmp_path / "data" / "postgres").exists()

    with running_dev(tmp_path / "busy") as dev:
        dev.wait_ready()
        second = subprocess.run(
            [RECORDINGS, "dev", "--data-dir", str(dev.data_dir), "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == PORT_IN_USE
        assert f"pid {dev.proc.pid}" in second.stderr and "Traceback" not in second.stderr
        assert httpx.get(f"http://127.0.0.1:{dev.port}/healthz", timeout=10).status_code == 200


def test_dev_is_closed_to_the_machines_other_users(tmp_path: Path) -> None:
    """What another local user could reach: PostgreSQL on 127.0.0.1 (needs dev.env's password),
    SeaweedFS's filer and volume ports (need a JWT signed with a key in the owner-only data
    folder), and the data folder's files (its user's only)."""
    import asyncpg

    with running_dev(tmp_path / "data", port=free_port()) as dev:
        dev.wait_ready()
        env = dict(
            line.split("=", 1) for line in (dev.data_dir / "dev.env").read_text().splitlines()
        )
        dsn = env["RECORDINGS_DATABASE_URL"]
        state = json.loads((dev.data_dir / "dev-state.json").read_text())
        pg_port = int(state["pg_port"])

        async def connect(url: str) -> object:
            conn = await asyncpg.connect(url, timeout=10)
            try:
                return await conn.fetchval("SELECT current_user")
            finally:
                await conn.close()

        assert asyncio.run(connect(dsn)) == "postgres"
        for anyone in (
            f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
            f"postgresql://postgres:wrong@127.0.0.1:{pg_port}/postgres",
        ):
            with pytest.raises(asyncpg.InvalidPasswordError):
                asyncio.run(connect(anyone))

        weed = next(p for p in dev.family() if "weed" in " ".join(p.cmdline()))
        flags = dict(
            arg.lstrip("-").split("=", 1)
            for arg in weed.cmdline()
            if arg.startswith("-") and "=" in arg
        )
        filer = f"http://127.0.0.1:{flags['filer.port']}"
        for method, path in (
            ("GET", "/buckets/"),
            ("GET", "/buckets/recordings/"),
            ("DELETE", "/buckets/recordings/?recursive=true"),
            ("POST", "/buckets/recordings/planted.wav"),
        ):
            answer = httpx.request(method, filer + path, timeout=10, content=b"x")
            assert answer.status_code == 401, (method, path, answer.status_code)
        volume = f"http://127.0.0.1:{flags['volume.port']}"
        planted = httpx.post(volume + "/1,01637037d6", files={"file": b"x"}, timeout=10)
        assert planted.status_code in (401, 403), planted.status_code
        # The S3 API itself still answers, with dev.env's credentials only.
        anonymous = httpx.get(env["RECORDINGS_S3_ENDPOINT_URL"] + "/recordings", timeout=10)
        assert anonymous.status_code == 403

        # The data folder and everything in it: its user's only. Every folder below it is
        # owner-only (what SeaweedFS writes 0644 inside is unreachable), and so is every file
        # directly in it (dev.env, the state, the logs).
        mode = stat.S_IMODE(dev.data_dir.stat().st_mode)
        assert mode & 0o066 == 0, oct(mode)
        exposed = []
        for root, dirs, files in os.walk(dev.data_dir):
            checked = dirs + (files if Path(root) == dev.data_dir else [])
            for name in checked:
                path = Path(root, name)
                info = path.lstat()
                if stat.S_ISSOCK(info.st_mode) or stat.S_ISLNK(info.st_mode):
                    continue
                if stat.S_IMODE(info.st_mode) & 0o077:
                    exposed.append((str(path), oct(stat.S_IMODE(info.st_mode))))
        assert not exposed, exposed[:20]
