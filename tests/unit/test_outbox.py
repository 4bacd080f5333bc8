"""What a callback says (Twilio's parameters), how an answer is judged, how the request is
built and where it connects, and when a failed attempt is tried again."""

from __future__ import annotations

import asyncio
import ipaddress
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from twilio.request_validator import RequestValidator

from db.callbacks import Callback
from service.callbacks.delivery import Deliverer, build_request, classify
from service.callbacks.guard import IPAddress
from service.callbacks.outbox import next_attempt, recording_url, retry_delay, status_params
from tests.support.callbacks import callback_to
from tests.support.loopback import LoopbackOnlyTransport
from tests.support.rows import recording_row

NOW = datetime(2026, 11, 27, 10, 0, 0, tzinfo=UTC)


def test_status_params_are_twilios() -> None:
    recording = recording_row(
        duration=17,
        channels=2,
        source="Conference",
        start_time=datetime(2026, 11, 27, 11, 12, 13, 999, tzinfo=UTC),
    )
    params = status_params(recording, "https://rec.example.com/pbx/")
    assert params == {
        "AccountSid": recording.account_sid,
        "CallSid": recording.call_sid,
        "RecordingSid": recording.sid,
        "RecordingUrl": f"https://rec.example.com/pbx/2010-04-01/Accounts/{recording.account_sid}"
        f"/Recordings/{recording.sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "17",
        "RecordingChannels": "2",
        "RecordingStartTime": "Fri, 27 Nov 2026 11:12:13 +0000",
        "RecordingSource": "Conference",
    }
    # Without a StartTime, the recording's creation stands for it.
    plain = recording_row()
    assert (
        status_params(plain, "http://h")["RecordingStartTime"] == "Sun, 06 May 2012 07:08:09 +0000"
    )
    assert recording_url("http://h/", plain).startswith("http://h/2010-04-01/")


def test_the_retry_schedule_doubles_from_the_first_delay_up_to_the_largest() -> None:
    delays = [retry_delay(n, initial=1.0, maximum=1800.0) for n in range(1, 15)]
    assert delays[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert delays[-1] == 1800.0 and max(delays) == 1800.0
    assert retry_delay(10_000, initial=1.0, maximum=60.0) == 60.0
    # The default schedule keeps trying for the whole 24-hour window: about 60 attempts.
    at, attempts, end = NOW, 0, NOW + timedelta(hours=24)
    while True:
        attempts += 1
        nxt = next_attempt(at, attempts, end, initial=1.0, maximum=1800.0)
        if nxt is None:
            break
        at = nxt
    assert at == end and 50 < attempts < 70


def test_the_last_attempt_is_made_at_the_windows_end() -> None:
    end = NOW + timedelta(seconds=10)
    assert next_attempt(NOW, 5, end, initial=1.0, maximum=1800.0) == end
    assert next_attempt(NOW, 1, end, initial=1.0, maximum=1800.0) == NOW + timedelta(seconds=1)
    assert next_attempt(end, 1, end, initial=1.0, maximum=1800.0) is None


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (429, "retry"),
        (301, "failed"),
        (302, "failed"),
        (307, "failed"),
        (400, "failed"),
        (401, "failed"),
        (403, "failed"),
        (404, "failed"),
        (410, "failed"),
    ],
)
def test_answers_are_judged(status: int, outcome: str) -> None:
    assert classify(status) == outcome


TOKEN = "0123456789abcdef0123456789abcdef"


def test_requests_are_built_and_signed_as_twilio_does() -> None:
    post = callback_to("https://app.example.com/hook?x=1")
    url, headers, body = build_request(post, TOKEN)
    assert url == post.url and body is not None
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert RequestValidator(TOKEN).validate(url, post.params, headers["X-Twilio-Signature"])
    assert headers["I-Twilio-Idempotency-Token"] == f"{post.recording_sid}-42"
    get = callback_to("https://app.example.com/hook", "GET")
    url, headers, body = build_request(get, TOKEN)
    assert body is None and url.startswith("https://app.example.com/hook?AccountSid=")
    assert RequestValidator(TOKEN).validate(url, {}, headers["X-Twilio-Signature"])
    _, unsigned, _ = build_request(post, None)
    assert "X-Twilio-Signature" not in unsigned


def resolving(table: dict[str, str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address(table[host])]

    return resolve


def send(cb: Callback, table: dict[str, str], transport: LoopbackOnlyTransport, **kw: bool) -> str:
    async def go() -> str:
        deliverer = Deliverer(
            allow_private=kw.get("allow_private", False),
            connect_timeout=1.0,
            timeout=2.0,
            concurrency=2,
            transport=transport,
            resolver=resolving(table),
        )
        try:
            return (await deliverer.send(cb, TOKEN)).outcome
        finally:
            await deliverer.aclose()

    return asyncio.run(go())


def test_delivery_connects_to_the_checked_address_keeping_the_name() -> None:
    transport = LoopbackOnlyTransport()
    cb = callback_to("https://hooks.example.test:8443/recording?tenant=7")
    # The name resolves to a public address: the guard lets it through, and the request goes
    # to that address (here refused by the test transport, so nothing leaves this machine).
    assert send(cb, {"hooks.example.test": "93.184.216.34"}, transport) == "retry"
    [request] = transport.refused
    assert request.url.host == "93.184.216.34" and request.url.port == 8443
    assert request.url.raw_path == b"/recording?tenant=7"
    assert request.headers["Host"] == "hooks.example.test:8443"
    assert request.extensions["sni_hostname"] == "hooks.example.test"
    signature = request.headers["X-Twilio-Signature"]
    assert RequestValidator(TOKEN).validate(cb.url, cb.params, signature)


def test_delivery_refuses_a_name_that_now_resolves_to_a_private_address() -> None:
    transport = LoopbackOnlyTransport()
    cb = callback_to("http://hooks.example.test/recording")
    for address in ("127.0.0.1", "10.0.0.5", "169.254.169.254", "::ffff:192.168.1.1"):
        assert send(cb, {"hooks.example.test": address}, transport) == "refused"
    assert transport.requests == []
    # RECORDINGS_WEBHOOK_ALLOW_PRIVATE lets it through, to the checked address.
    assert send(cb, {"hooks.example.test": "10.0.0.5"}, transport, allow_private=True) == "retry"
    assert [r.url.host for r in transport.refused] == ["10.0.0.5"]
    assert transport.refused[0].headers["Host"] == "hooks.example.test"
    assert "sni_hostname" not in transport.refused[0].extensions


def test_the_loopback_transport_refuses_names_and_other_addresses() -> None:
    transport = LoopbackOnlyTransport()

    async def go(url: str) -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            await client.get(url)

    for url in ("http://example.com/", "http://93.184.216.34/", "http://[2001:db8::1]/"):
        with pytest.raises(httpx.ConnectError, match="test transport"):
            asyncio.run(go(url))
    assert len(transport.refused) == 3
