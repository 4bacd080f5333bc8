"""The SSRF guard: which callback URLs the service may call, checked on resolved addresses.

A URL is refused when any address its host resolves to is loopback, private, link-local,
multicast, unspecified, reserved, a cloud metadata address or otherwise not globally reachable,
in IPv4 or IPv6 (IPv4-mapped, 6to4, Teredo and NAT64 addresses are judged by the IPv4 address
they carry). Checked at ingest, and again at delivery, where the request is then sent to the
checked address itself, so a name that resolves elsewhere in between changes nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses a connection could go to; tests inject their own.
Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]

MAX_URL_LENGTH = 2048
RESOLVE_TIMEOUT = 5.0
SCHEMES = {"http": 80, "https": 443}

# Metadata services that answer on addresses the classes below might not all catch (Azure's
# wireserver is a public address; Alibaba's is in the shared 100.64/10 range).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "168.63.129.16",  # Azure wireserver
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS over IPv6
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """A callback URL the service will not call; the message says why and may be shown."""


class UnresolvableHost(UrlRefused):
    """The URL's host does not resolve now: at delivery, a failure worth retrying."""


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect, and the name the request must carry."""

    url: str
    scheme: str
    host: str  # as written in the URL, without brackets
    port: int
    addresses: tuple[IPAddress, ...]


def refusal(address: IPAddress) -> str | None:
    """Why a connection to ``address`` is refused, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            # A connection to ::ffff:a.b.c.d is a connection to a.b.c.d over IPv4.
            inner = refusal(address.ipv4_mapped)
            return None if inner is None else f"{inner} (as {address})"
        embedded = address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal(embedded)
            if inner is not None:
                return f"{inner} (inside {address})"
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    # The order makes the message the most specific one: ::1 is loopback, not just reserved.
    for name, flag in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        # fec0::/10, deprecated by RFC 3879 but still routed inside some networks; Python's
        # is_private and is_global leave it out.
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
    ):
        if flag:
            return f"{address} is a {name} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def parse_callback_url(url: str) -> SplitResult:
    """The URL's parts if it is one the service could call at all (before any DNS)."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise UrlRefused("the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UrlRefused(f"the URL is malformed: {exc}") from exc
    if parts.scheme not in SCHEMES:
        raise UrlRefused("only http and https URLs are called")
    if not parts.hostname:
        raise UrlRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlRefused("credentials in the URL are not supported")
    if parts.fragment:
        raise UrlRefused("the URL has a fragment")
    if port == 0:
        raise UrlRefused("the URL's port is 0")
    try:
        # The client that sends the callback parses the URL again, more strictly than urlsplit
        # (``http://[::1]x/cb``, a host IDNA refuses): what it would refuse is refused here, at
        # ingest, rather than at every delivery attempt for a day.
        httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise UrlRefused(f"the URL cannot be sent: {exc}") from exc
    return parts


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """The addresses the system's resolver gives for ``host``, as a connection would use them."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    found: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if address not in found:
            found.append(address)
    return found


async def _addresses(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            addresses = await resolver(host, port)
    except TimeoutError as exc:
        raise UnresolvableHost(f"{host} did not resolve within {RESOLVE_TIMEOUT:g} s") from exc
    except (OSError, UnicodeError) as exc:
        raise UnresolvableHost(f"{host} does not resolve: {exc}") from exc
    if not addresses:
        raise UnresolvableHost(f"{host} does not resolve to any address")
    return addresses


async def check_callback_url(
    url: str, *, allow_private: bool, resolver: Resolver = system_resolver
) -> Target:
    """The target of ``url`` if the service may call it now; UrlRefused says why not.

    Every address the host resolves to must be public: a name with one public and one private
    address is refused, since a connection may go to either.
    """
    parts = parse_callback_url(url)
    host = parts.hostname or ""
    port = parts.port or SCHEMES[parts.scheme]
    addresses = await _addresses(host, port, resolver)
    if not allow_private:
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise UrlRefused(
                    f"{host} resolves to {address}: {reason}; callbacks go to public addresses"
                    " only (RECORDINGS_WEBHOOK_ALLOW_PRIVATE=true allows others)"
                    if str(address) != host
                    else f"{reason}; callbacks go to public addresses only"
                    " (RECORDINGS_WEBHOOK_ALLOW_PRIVATE=true allows others)"
                )
    return Target(url, parts.scheme, host, port, tuple(addresses))
