"""uvicorn's httptools protocol with a bound on request head size, which httptools lacks."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.errors import HeadersTooLarge
from service.http.representations import XML_TYPE, rest_exception_xml


class _LimitedHeadProtocol(HttpToolsProtocol):
    """Answers 431 and closes once a request's head passes ``max_head_bytes`` unfinished.

    httptools buffers a header of any size until it ends, so without this one request can
    make the process hold as much memory as the client cares to send.
    """

    max_head_bytes = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            # Counted before parsing: httptools would buffer the whole head first.
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > self.max_head_bytes:
                self._refuse()
                return
        super().data_received(data)

    def _refuse(self) -> None:
        body = rest_exception_xml(HeadersTooLarge.status, HeadersTooLarge.message)
        head = (
            "HTTP/1.1 431 Request Header Fields Too Large\r\n"
            f"content-type: {XML_TYPE}\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()


def http_protocol(max_head_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class to give uvicorn as ``http=``."""
    return type("LimitedHeadProtocol", (_LimitedHeadProtocol,), {"max_head_bytes": max_head_bytes})
