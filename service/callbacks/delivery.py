"""One attempt at a status callback: check the URL's addresses again, connect to the checked
one, send the signed request, and say what came of it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlencode

import httpx

from db.callbacks import Callback
from service.callbacks.guard import (
    IPAddress,
    Resolver,
    UnresolvableHost,
    UrlRefused,
    check_callback_url,
    system_resolver,
)
from service.callbacks.signing import SIGNATURE_HEADER, twilio_signature, wire_url, with_query

# delivered: a 2xx. retry: worth trying again (no answer, a timeout, 5xx, 429). failed: any
# other answer, which trying again would not change. refused: the URL resolves to an address
# the guard refuses now.
Outcome = Literal["delivered", "retry", "failed", "refused"]
USER_AGENT = "recordings-callbacks/1"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    status_code: int | None
    detail: str
    seconds: float


def loggable_url(url: str) -> str:
    """``url`` without its query string: receivers put their own secrets there."""
    base, query_mark, _ = url.partition("?")
    return base + ("?..." if query_mark else "")


def classify(status_code: int) -> Outcome:
    """What an answer means for the callback: done, try again, or give up."""
    if 200 <= status_code < 300:
        return "delivered"
    if status_code == 429 or status_code >= 500:
        return "retry"
    # Redirects are not followed (their target never passed the guard), and 4xx will not change.
    return "failed"


def build_request(
    callback: Callback, auth_token: str | None
) -> tuple[str, dict[str, str], bytes | None]:
    """The URL, headers and body of the callback as Twilio would send it (signed when the
    account's token is known)."""
    headers = {
        "User-Agent": USER_AGENT,
        # Twilio's own header for telling retries of one callback apart from new callbacks.
        "I-Twilio-Idempotency-Token": f"{callback.recording_sid}-{callback.id}",
    }
    if callback.method == "GET":
        written, body, signed = with_query(callback.url, callback.params), None, {}
    else:
        written, body, signed = callback.url, urlencode(callback.params).encode(), callback.params
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    # Signed over what is sent, not over the stored string: a receiver validates the URL it
    # rebuilds from the request, and that is the normalised one.
    url = str(wire_url(written))
    if auth_token is not None:
        headers[SIGNATURE_HEADER] = twilio_signature(auth_token, url, signed)
    return url, headers, body


class Deliverer:
    """The HTTP side of callbacks: one small pool of connections, bounded timeouts, no
    redirects followed, every connection made to an address the guard has just checked."""

    def __init__(
        self,
        *,
        allow_private: bool,
        connect_timeout: float,
        timeout: float,
        concurrency: int,
        transport: httpx.AsyncBaseTransport | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self.allow_private = allow_private
        self.timeout = timeout
        self.resolver = resolver
        self.client = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            # httpx has no total timeout; send() bounds the whole attempt with `timeout`.
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            # No proxy from the environment: the checked address is the one connected to.
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(self, callback: Callback, auth_token: str | None) -> Attempt:
        """One attempt; never raises for what the network or the receiver did."""
        started = time.monotonic()

        def done(outcome: Outcome, status: int | None, detail: str) -> Attempt:
            return Attempt(outcome, status, detail, time.monotonic() - started)

        try:
            target = await check_callback_url(
                callback.url, allow_private=self.allow_private, resolver=self.resolver
            )
        except UnresolvableHost as exc:
            return done("retry", None, str(exc))
        except UrlRefused as exc:
            return done("refused", None, str(exc))
        url, headers, body = build_request(callback, auth_token)
        original = httpx.URL(url)
        headers["Host"] = original.netloc.decode("ascii")
        extensions = {"sni_hostname": original.host} if original.scheme == "https" else {}
        try:
            async with asyncio.timeout(self.timeout):
                response = await self._first_to_connect(
                    callback.method, original, target.addresses, headers, body, extensions
                )
                # The body is not read: the status says all, and a huge one costs nothing.
                await response.aclose()
        except TimeoutError:
            return done("retry", None, f"no answer within {self.timeout:g} s")
        except httpx.TimeoutException as exc:
            return done("retry", None, f"timed out: {type(exc).__name__}")
        except httpx.HTTPError as exc:
            return done("retry", None, f"{type(exc).__name__}: {exc}"[:500])
        status = response.status_code
        return done(classify(status), status, f"HTTP {status}")

    async def _first_to_connect(
        self,
        method: str,
        url: httpx.URL,
        addresses: tuple[IPAddress, ...],
        headers: dict[str, str],
        body: bytes | None,
        extensions: dict[str, str],
    ) -> httpx.Response:
        """The answer from the first of the checked addresses that takes the connection, in
        the resolver's order (as a browser falls back from one address of a name to the next).

        The connection goes to an address just checked, never to whatever the name resolves to
        by the time httpx would look it up; Host and TLS's SNI (and the certificate check) keep
        the name. Only a failed connection moves on: a request that reached a receiver is not
        sent twice.
        """
        for index, address in enumerate(addresses):
            pinned = url.copy_with(host=str(address))
            request = self.client.build_request(
                method, pinned, headers=headers, content=body, extensions=extensions
            )
            try:
                return await self.client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if index == len(addresses) - 1:
                    raise
        raise AssertionError("the guard gives at least one address")
