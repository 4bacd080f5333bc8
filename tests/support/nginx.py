"""A real nginx running deploy/nginx.conf (adapted for loopback) and a plain client of it."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.servers import free_port
from tests.support.deployfiles import nginx_copy
from tests.support.processes import port_open, require_tool, running_process


@dataclass
class Proxy:
    port: int

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None and "Content-Length" not in (headers or {}):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            # A repeated header is joined, as HTTP reads it, so a duplicate shows.
            received: dict[str, str] = {}
            for name, value in response.getheaders():
                name = name.lower()
                received[name] = f"{received[name]}, {value}" if name in received else value
            return response.status, received, response.read()
        finally:
            conn.close()

    def echo(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> dict[str, Any]:
        status, _, data = self.request(method, target, headers, body)
        assert status == 200, data
        echoed = json.loads(data)
        assert isinstance(echoed, dict)
        return echoed


@contextmanager
def nginx_proxy(workdir: Path, upstream_ports: list[int]) -> Iterator[Proxy]:
    binary = require_tool("nginx", "apt-get install -y nginx-light")
    listen = free_port()
    conf = nginx_copy(workdir, listen, upstream_ports)
    argv = [binary, "-c", str(conf), "-e", "stderr", "-g", f"daemon off; pid {workdir}/nginx.pid;"]
    with running_process(
        argv, log=workdir / "nginx.log", ready=lambda: port_open(listen), timeout=20
    ):
        yield Proxy(listen)
