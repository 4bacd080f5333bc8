"""deploy/nginx.conf: streaming and untouched headers as written, accepted by `nginx -t`, and a
real nginx in front of a stand-in API passing requests and answers through as they are, trying
another replica only where that is safe.

nginx comes from Debian (installed by `bash .ci/run`); a missing one fails the test rather than
skipping it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import struct
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

from devstack.servers import free_port
from service.settings import Settings
from tests.support.deployfiles import (
    NGINX_CONF,
    Directive,
    env_example,
    nginx_copy,
    nginx_size,
    parse_nginx,
    the_server,
    upstream_servers,
)
from tests.support.nginx import nginx_proxy
from tests.support.processes import port_open, require_tool, running_process

# The request headers the service answers itself: the proxy must pass them as they came.
PASSED_HEADERS = (
    "Range",
    "If-Range",
    "If-None-Match",
    "If-Modified-Since",
    "If-Match",
    "If-Unmodified-Since",
    "Authorization",
)


@pytest.fixture(scope="module")
def nginx() -> Directive:
    return parse_nginx(NGINX_CONF.read_text())


def test_nginx_streams_and_passes_headers_untouched(nginx: Directive) -> None:
    server = the_server(nginx)

    def value(name: str) -> list[str]:
        (directive,) = server.find(name)
        return directive.args

    assert value("proxy_buffering") == ["off"]
    assert value("proxy_request_buffering") == ["off"]
    assert value("proxy_http_version") == ["1.1"]
    assert value("proxy_max_temp_file_size") == ["0"]
    assert nginx_size(value("client_max_body_size")[0]) == int(
        env_example()["RECORDINGS_MAX_UPLOAD_BYTES"]
    )
    assert (
        nginx_size(value("client_max_body_size")[0])
        == Settings.model_fields["max_upload_bytes"].default
    )
    assert int(value("proxy_read_timeout")[0].rstrip("s")) > int(
        env_example()["RECORDINGS_FFMPEG_TIMEOUT"]
    )

    headers = {d.args[0].lower(): d.args[1] for d in server.find("proxy_set_header")}
    assert headers["connection"] == ""
    assert headers["x-forwarded-for"] in ("$remote_addr", "$proxy_add_x_forwarded_for")
    assert headers["x-forwarded-proto"] == "$scheme"
    # The internal media location of accel mode talks to storage, not to the API: its own
    # test below.
    internal = [d for d in server.find("location") if d.find("internal")]
    inside_internal = [id(inner) for d in internal for inner in d.walk()]
    everywhere = [d for d in nginx.walk() if id(d) not in inside_internal]
    for d in everywhere:
        if d.name == "proxy_set_header":
            assert d.args[0].lower() not in {h.lower() for h in PASSED_HEADERS}, d.args
            # A location with proxy_set_header of its own would drop all of the server's.
            assert d.parents[-1] == "server", f"proxy_set_header inside {d.parents}"
        assert d.name not in {"proxy_cache", "proxy_cache_path", "proxy_store"} or d.args == [
            "off"
        ], d.name
        assert not (d.name == "proxy_force_ranges" and d.args != ["off"])
        assert d.name not in {
            "proxy_ignore_headers",
            "proxy_hide_header",
            "proxy_pass_request_headers",
            "more_clear_input_headers",
        }, d.name
        assert not (d.name == "gzip" and d.args != ["off"]), "gzip breaks Content-Length and ranges"
        assert d.name not in {"underscores_in_headers", "ignore_invalid_headers"}, d.name

    # Retries: connection errors only, never after an HTTP answer, never non-idempotent ones.
    assert set(value("proxy_next_upstream")) <= {"error", "timeout"}
    assert int(value("proxy_next_upstream_tries")[0]) >= 2

    upstream_names = set(upstream_servers(nginx))
    passes = [d for d in everywhere if d.name == "proxy_pass"]
    assert passes
    for d in passes:
        # No URI part: the request line's URI goes upstream as the client sent it.
        assert re.fullmatch(r"http://([\w-]+)", d.args[0]), d.args
        assert d.args[0].removeprefix("http://") in upstream_names
    locations = {tuple(d.args): d for d in server.find("location")}
    assert locations[("=", "/healthz")].find("proxy_pass")
    assert locations[("/",)].find("proxy_pass")

    (http,) = nginx.find("http")
    (upstream,) = http.find("upstream")
    assert upstream.find("keepalive") and upstream.find("zone")
    for _, _, params in upstream_servers(nginx)["recordings_api"]:
        assert "resolve" in params  # replicas' addresses change when containers are recreated
    assert http.find("resolver")[0].args[0] == "127.0.0.11"  # Docker's embedded DNS


def test_nginx_accepts_the_configuration(tmp_path: Path) -> None:
    binary = require_tool("nginx", "apt-get install -y nginx-light")
    conf = nginx_copy(tmp_path, free_port(), [free_port(), free_port()])
    run = subprocess.run(
        [binary, "-t", "-q", "-c", str(conf), "-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    # nginx -t is no rubber stamp: an unknown directive fails it.
    conf.write_text(conf.read_text().replace("proxy_buffering off;", "proxy_bufering off;"))
    run = subprocess.run(
        [binary, "-t", "-q", "-c", str(conf), "-e", "stderr", "-g", f"pid {tmp_path}/nginx.pid;"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0


# A stand-in for the API behind nginx: it reports what reached it and answers as told.
UPSTREAM_APP = textwrap.dedent(
    """
    import json

    hits = {}

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        size = 0
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        path = scope["path"]
        hits[path] = hits.get(path, 0) + 1
        headers = [(b"etag", b'"abc"'), (b"accept-ranges", b"bytes")]
        if path == "/full":
            status, body = 200, bytes(range(100))
        elif path == "/partial":
            status, body = 206, bytes(range(10))
            headers.append((b"content-range", b"bytes 0-9/100"))
        elif path == "/unavailable":
            status, body = 503, b"busy"
            headers.append((b"retry-after", b"7"))
        else:
            status = 200
            body = json.dumps({
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "method": scope["method"],
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query_string": scope["query_string"].decode("latin-1"),
                "scheme": scope["scheme"],
                "http_version": scope["http_version"],
                "client": scope["client"][0],
                "size": size,
                "hits": hits,
            }).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
    """
)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The stand-in API under uvicorn, trusting X-Forwarded-* from 127.0.0.1 (the proxy)."""
    workdir = tmp_path_factory.mktemp("upstream")
    (workdir / "upstream_app.py").write_text(UPSTREAM_APP)
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "upstream_app:app",
        "--app-dir",
        str(workdir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
    ]
    with running_process(
        argv,
        log=workdir / "uvicorn.log",
        env={**os.environ, "FORWARDED_ALLOW_IPS": "127.0.0.1"},
        ready=lambda: port_open(port),
        timeout=20,
    ):
        yield port


def test_nginx_passes_requests_and_answers_through_untouched(tmp_path: Path, upstream: int) -> None:
    with nginx_proxy(tmp_path, [upstream, upstream]) as proxy:
        sent = {
            "Range": "bytes=100-199",
            "If-Range": '"abc"',
            "If-None-Match": '"abc", W/"old"',
            "If-Modified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
            "If-Match": '"abc"',
            "If-Unmodified-Since": "Wed, 21 Oct 2015 07:28:00 GMT",
            "Authorization": "Basic QUMxMjM6c2VjcmV0",
            "X-Forwarded-For": "203.0.113.9",  # a client's claim, replaced by the proxy
        }
        target = "/2008-08-01/Accounts/AC1/Recordings.json?DateCreated>=2026-11-01&CallSid=CA%2F1"
        echoed = proxy.echo("GET", target, sent)
        received = {k.lower(): v for k, v in echoed["headers"]}
        for name in PASSED_HEADERS:
            assert received[name.lower()] == sent[name], name
        assert received["x-forwarded-for"] == "127.0.0.1"
        assert received["x-forwarded-proto"] == "http"
        assert received["host"] == f"127.0.0.1:{proxy.port}"
        # HTTP/1.1 with no Connection header: keep-alive connections to the replicas.
        assert "connection" not in received and echoed["http_version"] == "1.1"
        assert echoed["raw_path"] + "?" + echoed["query_string"] == target
        assert echoed["client"] == "127.0.0.1" and echoed["scheme"] == "http"

        # nginx neither slices a whole answer for a Range nor answers a conditional itself.
        status, headers, body = proxy.request(
            "GET", "/full", {"Range": "bytes=0-9", "If-None-Match": '"abc"'}
        )
        assert (status, len(body), headers.get("content-range")) == (200, 100, None)
        assert headers["etag"] == '"abc"' and headers["accept-ranges"] == "bytes"
        status, headers, body = proxy.request("GET", "/partial", {"Range": "bytes=0-9"})
        assert (status, headers["content-range"], body) == (206, "bytes 0-9/100", bytes(range(10)))
        assert headers["content-length"] == "10"

        # The service's 503 goes out as it is, tried on one replica only.
        status, headers, body = proxy.request("GET", "/unavailable")
        assert (status, headers["retry-after"], body) == (503, "7", b"busy")
        assert proxy.echo("GET", "/count")["hits"]["/unavailable"] == 1

        # Uploads reach the service whole; over the limit, nginx refuses before any byte goes on.
        upload = os.urandom(3 * 1024 * 1024 + 1)
        assert proxy.echo("POST", "/upload", body=upload)["size"] == len(upload)
        limit = int(env_example()["RECORDINGS_MAX_UPLOAD_BYTES"])
        status, _, _ = proxy.request("POST", "/too-large", {"Content-Length": str(limit + 1)}, b"")
        assert status == 413
        assert "/too-large" not in proxy.echo("GET", "/count")["hits"]


@contextmanager
def dropping_server() -> Iterator[int]:
    """A replica that accepts a connection, reads the request, and resets without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                with suppress(OSError):
                    conn.recv(65536)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.mark.parametrize("failure", ["refused", "reset"])
def test_nginx_tries_another_replica_only_where_that_is_safe(
    failure: str, tmp_path: Path, upstream: int
) -> None:
    with ExitStack() as stack:
        bad = free_port() if failure == "refused" else stack.enter_context(dropping_server())
        proxy = stack.enter_context(nginx_proxy(tmp_path, [bad, upstream]))
        # POSTs (ingest) first, while the bad replica is still in the rotation.
        statuses = {}
        for n in range(4):
            path = f"/ingest-{failure}-{n}"
            statuses[path], _, _ = proxy.request("POST", path, body=b"audio" * 1000)
        hits = proxy.echo("GET", "/count")["hits"]
        for path, status in statuses.items():
            if failure == "refused":
                # Nothing was sent to the bad replica: the POST goes to the other one, once.
                assert (status, hits.get(path)) == (200, 1), path
            else:
                # Sent, then lost: nginx cannot know whether it took effect, so it does not retry.
                assert (status, hits.get(path)) in ((502, None), (200, 1)), path
        if failure == "reset":
            assert 502 in statuses.values(), "round robin sent no POST to the bad replica"
        # Idempotent requests always fail over to the live replica.
        for _ in range(6):
            assert proxy.echo("GET", "/retried")["method"] == "GET"


def test_nginx_keeps_internal_routes_from_the_internet_and_the_service_limits(
    nginx: Directive,
) -> None:
    server = the_server(nginx)
    locations = {" ".join(d.args): d for d in server.find("location")}
    internal = locations["/internal/"]
    rules = [(d.name, d.args[0]) for d in internal.block or [] if d.name in ("allow", "deny")]
    assert rules[-1] == ("deny", "all")
    assert all(ipaddress.ip_network(net).is_private for kind, net in rules if kind == "allow"), (
        rules
    )
    metrics = locations["~* ^/metrics(/|$)"]
    assert [d.args for d in metrics.find("return")] == [["404"]]
    settings = Settings()
    directives = {d.name: d.args for d in server.block or []}
    assert directives["client_header_timeout"] == [f"{settings.head_timeout_seconds:.0f}s"]
    assert directives["client_body_timeout"] == [f"{settings.body_idle_timeout_seconds:.0f}s"]
    assert directives["keepalive_timeout"] == [f"{settings.keep_alive_seconds:.0f}s"]
    assert directives["send_timeout"] == [f"{settings.stream_send_timeout_seconds:.0f}s"]
    count, size = directives["large_client_header_buffers"]
    assert int(count) * nginx_size(size) == settings.max_header_bytes
