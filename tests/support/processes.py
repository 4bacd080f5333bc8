"""Child processes of a test: external tools found or failed for, servers started and reaped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest


def require_tool(name: str, install: str) -> str:
    """The path of an external tool; a missing one is a failure, never a skip."""
    for path in (os.environ.get("PATH", ""), str(Path(sys.executable).parent), "/usr/sbin:/sbin"):
        found = shutil.which(name, path=path)
        if found:
            return found
    pytest.fail(f"{name} is needed by this test: {install}")


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


@contextmanager
def running_process(
    argv: list[str],
    *,
    log: Path,
    env: Mapping[str, str] | None = None,
    ready: Callable[[], bool] | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running for the length of the block, its output in ``log``.

    With ``ready``, the block starts once it says so (a failure if the process exits first or
    ``timeout`` passes). The process is terminated and reaped afterwards, killed if it lingers,
    also when the block fails.
    """
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        deadline = time.monotonic() + timeout
        while ready is not None and not ready():
            assert process.poll() is None, f"{argv[:2]} exited: {log.read_text()}"
            assert time.monotonic() < deadline, f"{argv[:2]} not ready: {log.read_text()}"
            time.sleep(0.05)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
