"""The app's side of status callbacks: an HTTP server on a loopback address that records what
it is sent and answers as it is told, and the checks an app makes of a callback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from twilio.request_validator import RequestValidator

from devstack.servers import free_port


@dataclass(frozen=True)
class Received:
    method: str
    path: str  # with its query string
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status sent back; None when the connection was left hanging

    @property
    def url(self) -> str:
        """The full URL the app sees (from the Host header, as a framework rebuilds it)."""
        return f"http://{self.headers['Host']}{self.path}"

    @property
    def params(self) -> dict[str, str]:
        """The callback's parameters: the form body of a POST, the query of a GET."""
        if self.method == "POST":
            return dict(parse_qsl(self.body.decode(), keep_blank_values=True))
        return dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))

    def signed_by(self, auth_token: str) -> bool:
        """What an app does with twilio-python: RequestValidator(token).validate(...)."""
        signature = self.headers.get("X-Twilio-Signature", "")
        form = self.params if self.method == "POST" else {}
        return bool(RequestValidator(auth_token).validate(self.url, form, signature))


# How the receiver answers one request: a status code, "hang" (read the request, never answer
# until the receiver stops or is released), "hold" (answer 204 once released), or
# ("redirect", location).
Behaviour = int | str | tuple[str, str]


@dataclass
class Receiver:
    """A callback receiver on ``host`` (127.0.0.1 unless told); answers ``script`` in order,
    then ``default``."""

    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    script: list[Behaviour] = field(default_factory=list)
    default: Behaviour = 204
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        # Set by every request as it arrives (clear it to wait for the next one).
        self.arrived = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks/recording?tenant=7"

    def _next(self) -> Behaviour:
        with self._lock:
            return self.script.pop(0) if self.script else self.default

    def _record(self, entry: Received) -> None:
        with self._lock:
            self.received.append(entry)

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items()}
                behaviour = receiver._next()
                receiver.arrived.set()
                if behaviour == "hold":
                    receiver._release.wait(60)
                    behaviour = 204
                if behaviour == "hang":
                    receiver._record(Received(self.command, self.path, headers, body, None))
                    receiver._release.wait(60)
                    self.close_connection = True
                    return
                status = behaviour if isinstance(behaviour, int) else 302
                receiver._record(Received(self.command, self.path, headers, body, status))
                self.send_response(status)
                if isinstance(behaviour, tuple):
                    self.send_header("Location", behaviour[1])
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = _handle

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def release(self) -> None:
        """Let hanging requests end (without an answer)."""
        self._release.set()

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answered(self) -> list[Received]:
        """The requests it answered with a 2xx."""
        with self._lock:
            return [r for r in self.received if r.answered and 200 <= r.answered < 300]


def wait_until(check: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
    """Poll ``check`` until it returns something true; a failure naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {what}")
        time.sleep(0.05)
