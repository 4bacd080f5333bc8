"""The tests' safety net for callbacks: an httpx transport that connects only to loopback
addresses, whatever the code under test asks for, and records every request it was given."""

from __future__ import annotations

import ipaddress

import httpx


class LoopbackOnlyTransport(httpx.AsyncBaseTransport):
    """Passes requests for loopback IP literals to a real transport; anything else (another
    address, or a name, which would need DNS) is recorded and refused before any socket opens.
    Even a broken SSRF guard cannot make a test connect off this machine through it."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.refused: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        try:
            loopback = ipaddress.ip_address(request.url.host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            self.refused.append(request)
            raise httpx.ConnectError(
                f"test transport: no connection to {request.url.host}", request=request
            )
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
