"""`recordings serve --workers N`: N uvicorn worker processes on one port, each with the
service's own protocol limits and settings."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil

from service.settings import Settings
from tests.support.clients import Account, uploaded_sid
from tests.support.stack import recordings_env, recordings_serve


def _workers(port: int) -> set[int]:
    """The processes listening on ``port`` (uvicorn's workers share the parent's socket)."""
    listening = set()
    for proc in psutil.process_iter():
        try:
            for conn in proc.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
                    listening.add(proc.pid)
        except psutil.Error:
            continue
    return listening


def test_serve_runs_worker_processes_with_the_services_limits(
    settings: Settings, account: Account, demo_wav: bytes, tmp_path: Path
) -> None:
    env = recordings_env(settings, RECORDINGS_MAX_HEADER_BYTES="8192")
    with recordings_serve(env, tmp_path / "serve.log", args=("--workers", "2")) as base_url:
        port = urlsplit(base_url).port
        assert port is not None
        serving = _workers(port)
        # The supervisor and its two workers hold the socket.
        assert len(serving) == 3, serving
        with httpx.Client(base_url=base_url, timeout=30) as http:
            sid = uploaded_sid(http, account, demo_wav)
            for _ in range(8):
                assert http.get(f"{account.base}/{sid}.wav").content == demo_wav
        # The head limit is the settings' (8 KB), applied by the workers' protocol.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n")
            assert raw.recv(64).startswith(b"HTTP/1.1 431")
