"""The SSRF guard in the running service: refused at ingest with a 400 that says why, refused
again at delivery when a name resolves elsewhere by then, and redirects never followed.

Nothing here can connect off this machine: ingests name only address literals and localhost
(no DNS of any public name), and deliveries go through the loopback-only test transport."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from service.callbacks.delivery import Deliverer
from service.callbacks.guard import IPAddress
from service.settings import Settings
from tests.support.callbacks import (
    callback_to,
    dispatching,
    end_pending_callbacks,
    one_callback,
    queue_callback_row,
)
from tests.support.clients import Account, upload
from tests.support.loopback import LoopbackOnlyTransport
from tests.support.receivers import Receiver, wait_until
from tests.support.rows import insert_recordings, recording_row


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "127.0.0.1 is a loopback address"),
        ("http://localhost:9/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://10.20.30.40/hook", "private"),
        ("http://192.168.0.10:8080/hook", "private"),
        ("http://[fd00::1]/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.251/hook", "multicast"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://100.64.1.1/hook", "not a public address"),
        ("ftp://93.184.216.34/hook", "only http and https"),
        ("http://user:secret@93.184.216.34/hook", "credentials"),
        ("not-a-url", "only http and https"),
    ],
)
def test_ingest_refuses_callback_urls_with_a_400_that_says_why(
    client: httpx.Client, account: Account, url: str, reason: str
) -> None:
    response = upload(client, account, b"RIFF", query={"RecordingStatusCallback": url}, expect=400)
    message = response.json()["message"]
    assert message.startswith("RecordingStatusCallback is refused") and reason in message
    listed = client.get(account.base + ".json", auth=account.auth).json()
    assert listed["total"] == 0


def test_ingest_refuses_an_unknown_method(client: httpx.Client, account: Account) -> None:
    response = upload(
        client,
        account,
        b"RIFF",
        query={
            "RecordingStatusCallback": "http://127.0.0.1/x",
            "RecordingStatusCallbackMethod": "PUT",
        },
        expect=400,
    )
    assert "POST or GET" in response.json()["message"]


def test_accounts_set_refuses_the_same_urls(settings: Settings, account: Account) -> None:
    from tests.support.stack import run_recordings

    result = run_recordings(
        settings,
        "accounts",
        "set",
        "--status-callback",
        "http://10.0.0.1/",
        account.sid,
        check=False,
    )
    assert result.returncode == 2 and "private" in result.stderr
    nothing = run_recordings(settings, "accounts", "set", account.sid, check=False)
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    bad_method = run_recordings(
        settings, "accounts", "set", "--status-callback-method", "PUT", account.sid, check=False
    )
    assert bad_method.returncode == 2


@pytest.fixture
def cleanup(settings: Settings) -> Iterator[None]:
    yield
    end_pending_callbacks(settings.database_url)


def queue_callback(settings: Settings, account: Account, url: str) -> str:
    """A recording's row and its callback to ``url``, written as an ingest writes them."""
    [recording] = insert_recordings(settings.database_url, [recording_row(account.sid, settings)])

    async def go() -> None:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await queue_callback_row(conn, account.sid, recording.sid, url, window_seconds=60)
        finally:
            await conn.close()

    asyncio.run(go())
    return recording.sid


def test_delivery_checks_again_where_a_name_resolves_now(
    settings: Settings, account: Account, cleanup: None
) -> None:
    """Accepted when it resolved to a public address, the name resolves to this machine by the
    time of delivery (DNS rebinding): refused, and the receiver there hears nothing."""
    with Receiver() as receiver:
        url = f"http://rebound.example.test:{receiver.port}/hook"
        sid = queue_callback(settings, account, url)
        asked: list[str] = []

        async def rebound(host: str, port: int) -> list[IPAddress]:
            asked.append(host)
            return [ipaddress.ip_address("127.0.0.1")]

        strict = settings.model_copy(update={"webhook_allow_private": False})
        with dispatching(strict, resolver=rebound) as transport:
            wait_until(lambda: one_callback(settings.database_url, sid)["status"] == "failed")
        row = one_callback(settings.database_url, sid)
        assert "loopback" in row["last_error"] and row["attempts"] == 1
        assert asked == ["rebound.example.test"]
        assert transport.requests == [] and receiver.received == []


def _deliver(url: str, addresses: list[str]) -> tuple[str, int | None, list[str]]:
    """One attempt at ``url``, whose name resolves to ``addresses`` (loopback ones only)."""
    transport = LoopbackOnlyTransport()

    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(a) for a in addresses]

    async def go() -> tuple[str, int | None]:
        deliverer = Deliverer(
            allow_private=True,
            connect_timeout=1.0,
            timeout=5.0,
            concurrency=1,
            transport=transport,
            resolver=resolve,
        )
        try:
            attempt = await deliverer.send(callback_to(url), None)
        finally:
            await deliverer.aclose()
        return attempt.outcome, attempt.status_code

    outcome, status = asyncio.run(go())
    return outcome, status, [str(r.url.host) for r in transport.requests]


def test_redirects_are_not_followed() -> None:
    """A receiver on 127.0.0.1 redirects to another loopback address, 127.0.0.2: the answer
    ends the callback, and nothing is sent to the redirect's target."""
    with (
        Receiver(host="127.0.0.2") as elsewhere,
        Receiver(default=("redirect", elsewhere.url)) as redirecting,
    ):
        # An address literal: nothing is resolved.
        assert _deliver(redirecting.url, []) == ("failed", 302, ["127.0.0.1"])
        assert [r.answered for r in redirecting.received] == [302]
        assert elsewhere.received == []


def test_an_address_that_refuses_the_connection_falls_back_to_the_next() -> None:
    """The name resolves to 127.0.0.2 first, where nothing listens, then to the receiver's."""
    with Receiver(default=204) as receiver:
        url = f"http://hooks.example.test:{receiver.port}/hook"
        assert _deliver(url, ["127.0.0.2", "127.0.0.1"]) == (
            "delivered",
            204,
            ["127.0.0.2", "127.0.0.1"],
        )
        assert len(receiver.received) == 1
        assert receiver.received[0].headers["Host"] == f"hooks.example.test:{receiver.port}"


def test_an_answer_is_never_sent_again_to_another_address() -> None:
    """A 500 from the first address is the attempt's answer: the second, listening on the same
    port, hears nothing."""
    with (
        Receiver(default=500) as failing,
        Receiver(host="127.0.0.2", port=failing.port, default=204) as other,
    ):
        url = f"http://hooks.example.test:{failing.port}/hook"
        outcome, status, asked = _deliver(url, ["127.0.0.1", "127.0.0.2"])
        assert (outcome, status, asked) == ("retry", 500, ["127.0.0.1"])
        assert [r.answered for r in failing.received] == [500]
        assert other.received == []


def test_when_every_address_refuses_the_attempt_is_retried_later() -> None:
    with Receiver() as receiver:
        port = receiver.port
    # Closed: nothing listens on either address any more.
    outcome, status, asked = _deliver(
        f"http://hooks.example.test:{port}/hook", ["127.0.0.2", "127.0.0.3"]
    )
    assert (outcome, status, asked) == ("retry", None, ["127.0.0.2", "127.0.0.3"])
