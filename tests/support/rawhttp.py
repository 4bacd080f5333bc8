"""A raw HTTP/1.1 client: requests sent byte for byte as written, responses read off the socket.

For what httpx would not send (unnormalised targets, lying Content-Lengths) or would hide (the
response head as it came, header lines and all).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class RawResponse:
    status: int
    head: bytes  # status line and header lines, as sent
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def raw_request(
    base_url: str,
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    timeout: float = 20.0,
    content_length: int | None = None,
) -> RawResponse | None:
    """One HTTP/1.1 request exactly as written (no client-side URL normalisation).

    None when the server closed the connection without answering.
    """
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port, base_url
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    lines.append("Connection: close")
    if body or content_length is not None:
        lines.append(f"Content-Length: {len(body) if content_length is None else content_length}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
    received = bytearray()
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        try:
            sock.sendall(request)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    if not received:
        return None
    head, sep, rest = bytes(received).partition(b"\r\n\r\n")
    assert sep, f"incomplete response head: {bytes(received[:200])!r}"
    status_line, *header_lines = head.split(b"\r\n")
    status = int(status_line.split(b" ")[1])
    parsed = []
    for line in header_lines:
        name, colon, value = line.decode("latin-1").partition(":")
        assert colon, f"not a header line: {line!r}"
        parsed.append((name, value.strip()))
    response = RawResponse(status, head, parsed, rest)
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        response.body = _dechunk(rest)
    return response
