"""The SSRF guard on addresses, on names (resolved by an injected resolver: no DNS here), and on
URLs' forms."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

import pytest

from service.callbacks.guard import (
    IPAddress,
    UnresolvableHost,
    UrlRefused,
    check_callback_url,
    refusal,
)

REFUSED = {
    # address: what the refusal must say
    "127.0.0.1": "loopback",
    "127.8.9.10": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "169.254.1.1": "link-local",
    "fe80::1": "link-local",
    "fec0::1": "site-local",  # deprecated (RFC 3879), still routed inside some networks
    "feff:ffff::1": "site-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "",  # broadcast: private/reserved, refused either way
    "100.64.0.1": "not a public address",  # carrier-grade NAT, shared address space
    "192.0.2.1": "",  # documentation (TEST-NET-1)
    "2001:db8::1": "",  # documentation
    "169.254.169.254": "metadata",
    "169.254.170.2": "metadata",
    "100.100.100.200": "metadata",
    "168.63.129.16": "metadata",
    "fd00:ec2::254": "metadata",
    # IPv4 inside IPv6: judged by the IPv4 address.
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "metadata",
    "2002:0a00:0001::1": "private",  # 6to4 of 10.0.0.1
    "64:ff9b::7f00:1": "loopback",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe": "metadata",  # NAT64 of 169.254.169.254
}
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"]


@pytest.mark.parametrize(("address", "reason"), REFUSED.items())
def test_non_public_addresses_are_refused(address: str, reason: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None, address
    assert reason in why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def resolver_of(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """A resolver that answers from ``table`` and fails for any other name, as NXDOMAIN."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [ipaddress.ip_address(a) for a in table[host]]

    resolve.asked = asked  # type: ignore[attr-defined]
    return resolve


NAMES = {
    "public.example.test": ["93.184.216.34"],
    "public6.example.test": ["2606:4700:4700::1111", "93.184.216.34"],
    "loopback.example.test": ["127.0.0.1"],
    "private.example.test": ["10.0.0.7"],
    "metadata.example.test": ["169.254.169.254"],
    "mapped.example.test": ["::ffff:192.168.0.1"],
    "mixed.example.test": ["93.184.216.34", "10.0.0.7"],
    "v6local.example.test": ["fe80::1"],
    "empty.example.test": [],
}


def check(url: str, *, allow_private: bool = False) -> tuple[str, ...]:
    target = asyncio.run(
        check_callback_url(url, allow_private=allow_private, resolver=resolver_of(NAMES))
    )
    return tuple(str(a) for a in target.addresses)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("loopback.example.test", "loopback"),
        ("private.example.test", "private"),
        ("metadata.example.test", "metadata"),
        ("mapped.example.test", "private"),
        ("mixed.example.test", "10.0.0.7"),
        ("v6local.example.test", "link-local"),
    ],
)
def test_names_that_resolve_to_refused_addresses_are_refused(host: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        check(f"https://{host}/hook")
    assert reason in str(refused.value) and host in str(refused.value)
    assert "RECORDINGS_WEBHOOK_ALLOW_PRIVATE" in str(refused.value)
    # With private addresses allowed, the same names pass.
    assert check(f"https://{host}/hook", allow_private=True)


def test_names_that_resolve_to_public_addresses_pass() -> None:
    assert check("https://public.example.test/hook") == ("93.184.216.34",)
    assert check("http://public6.example.test:8080/x?y=1") == (
        "2606:4700:4700::1111",
        "93.184.216.34",
    )


def test_address_literals_are_checked_without_a_resolver() -> None:
    resolver = resolver_of({})
    for url, reason in [
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://0.0.0.0:80/", "unspecified"),
    ]:
        with pytest.raises(UrlRefused, match=reason):
            asyncio.run(check_callback_url(url, allow_private=False, resolver=resolver))
    assert resolver.asked == []  # type: ignore[attr-defined]


def test_unresolvable_names_are_a_retryable_refusal() -> None:
    for host in ("nxdomain.example.test", "empty.example.test"):
        with pytest.raises(UnresolvableHost):
            check(f"https://{host}/")


def test_a_resolver_that_hangs_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import service.callbacks.guard as guard

    monkeypatch.setattr(guard, "RESOLVE_TIMEOUT", 0.05)

    async def hang(host: str, port: int) -> list[IPAddress]:
        await asyncio.sleep(10)
        return []

    with pytest.raises(UnresolvableHost, match="did not resolve"):
        asyncio.run(
            check_callback_url("https://slow.example.test/", allow_private=False, resolver=hang)
        )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://public.example.test/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://public.example.test/", "only http and https"),
        ("public.example.test/hook", "only http and https"),
        ("http:///path", "no host"),
        ("http://user:pass@public.example.test/", "credentials"),
        ("http://public.example.test:99999/", "malformed"),
        ("http://public.example.test:0/", "port is 0"),
        ("http://public.example.test/a b", "whitespace"),
        ("http://public.example.test/\r\nX: y", "whitespace"),
        ("http://public.example.test/#frag", "fragment"),
        ("http://public.example.test/" + "a" * 3000, "longer than"),
        # What the HTTP client itself would refuse to send.
        ("http://[::1]x/cb", "cannot be sent"),
        ("http://[::1/cb", "malformed"),
        ("http://exa mple.test/cb", "whitespace"),
        ("http://ex\u00e4mple..test/cb", "cannot be sent"),
    ],
)
def test_malformed_urls_are_refused_before_any_lookup(url: str, reason: str) -> None:
    resolver = resolver_of(NAMES)
    with pytest.raises(UrlRefused, match=reason):
        asyncio.run(check_callback_url(url, allow_private=True, resolver=resolver))
    assert resolver.asked == []  # type: ignore[attr-defined]
