"""Recording status callbacks end to end: an ingest (or an account's default) queues one, the
worker's dispatcher delivers it to a real receiver on 127.0.0.1, and the app checks it with
twilio-python's own RequestValidator.

These tests have a PostgreSQL of their own: the dispatcher delivers every due callback of its
database, and no other module's rows should reach these receivers (nor theirs these)."""

from __future__ import annotations

import logging
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest

from devstack.servers import EmbeddedPostgres
from service.settings import Settings
from tests.support.callbacks import (
    callback_rows,
    dispatching,
    one_callback,
)
from tests.support.clients import Account, new_account, upload
from tests.support.receivers import Receiver, wait_until
from tests.support.rows import fetch_rows
from tests.support.stack import (
    ServerThread,
    run_recordings,
)

pytestmark = pytest.mark.usefixtures("cb_clean")


@pytest.fixture
def http(cb_http: httpx.Client) -> httpx.Client:
    return cb_http


def ingest(
    http: httpx.Client,
    account: Account,
    wav: bytes,
    callback: str | None = None,
    method: str | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    query = dict(kwargs.pop("query", {}))
    if callback is not None:
        query["RecordingStatusCallback"] = callback
    if method is not None:
        query["RecordingStatusCallbackMethod"] = method
    response = upload(http, account, wav, query=query, **kwargs)
    return dict(response.json())


def delivered(dsn: str, sid: str) -> bool:
    return bool(one_callback(dsn, sid)["status"] == "delivered")


def test_a_post_callback_carries_twilios_parameters_and_signature(
    http: httpx.Client,
    cb_server: ServerThread,
    cb_settings: Settings,
    acct: Account,
    demo_wav: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="service.callbacks")
    with Receiver() as receiver:
        made = ingest(
            http,
            acct,
            demo_wav,
            receiver.url,
            headers={"X-Request-Id": "ingest-req-4711"},
            query={"StartTime": "2026-11-27T10:11:12Z", "Source": "DialVerb"},
        )
        sid = made["sid"]
        # Queued with the recording, before any worker runs.
        assert one_callback(cb_settings.database_url, sid)["status"] == "pending"
        with dispatching(cb_settings):
            wait_until(lambda: delivered(cb_settings.database_url, sid), what="delivery")
        [got] = receiver.received
    assert got.method == "POST"
    assert got.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert got.path == "/hooks/recording?tenant=7"
    assert got.params == {
        "AccountSid": acct.sid,
        "CallSid": made["call_sid"],
        "RecordingSid": sid,
        "RecordingUrl": f"{cb_server.base_url}/2010-04-01/Accounts/{acct.sid}/Recordings/{sid}",
        "RecordingStatus": "completed",
        "RecordingDuration": "3",
        "RecordingChannels": "1",
        "RecordingStartTime": "Fri, 27 Nov 2026 10:11:12 +0000",
        "RecordingSource": "DialVerb",
    }
    assert got.signed_by(acct.token)
    assert not got.signed_by("0" * 32)
    # The RecordingUrl is the recording, without an extension, as Twilio's.
    assert http.get(got.params["RecordingUrl"] + ".json", auth=acct.auth).json()["sid"] == sid
    assert http.get(got.params["RecordingUrl"]).content == demo_wav
    lines = [r for r in caplog.records if r.name.startswith("service.callbacks")]
    assert any(getattr(r, "outcome", None) == "delivered" and sid in r.getMessage() for r in lines)
    # The attempt's log line carries the ingest's request id (the JSON formatter adds it).
    from service.logs import JsonFormatter

    formatted = [JsonFormatter().format(r) for r in lines]
    assert any('"request_id": "ingest-req-4711"' in f and sid in f for f in formatted), formatted


def test_a_get_callback_carries_its_parameters_in_the_url_signed(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes
) -> None:
    with Receiver() as receiver:
        sid = ingest(http, acct, demo_wav, receiver.url, "GET")["sid"]
        with dispatching(cb_settings):
            wait_until(lambda: delivered(cb_settings.database_url, sid), what="delivery")
        [got] = receiver.received
    assert got.method == "GET" and got.body == b""
    assert got.path.startswith("/hooks/recording?tenant=7&")
    assert got.params["RecordingSid"] == sid and got.params["tenant"] == "7"
    assert parsedate_to_datetime(got.params["RecordingStartTime"]).utcoffset() is not None
    assert got.signed_by(acct.token)
    assert not got.signed_by("f" * 32)


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_accounts_default_callback_set_from_the_command_line(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes, method: str
) -> None:
    with Receiver() as receiver:
        args = ["accounts", "set", "--status-callback", receiver.url]
        if method == "GET":
            args += ["--status-callback-method", "get"]
        result = run_recordings(cb_settings, *args, acct.sid)
        assert f"status callback {method} {receiver.url}" in result.stdout
        assert result.stderr == ""
        listed = run_recordings(cb_settings, "accounts", "list", "--json").stdout
        assert f'"status_callback": "{receiver.url}"' in listed
        sid = ingest(http, acct, demo_wav)["sid"]
        # The ingest's own callback wins over the account's.
        with Receiver() as own:
            other = ingest(http, acct, demo_wav, own.url)["sid"]
            with dispatching(cb_settings):
                wait_until(lambda: delivered(cb_settings.database_url, sid), what="default")
                wait_until(lambda: delivered(cb_settings.database_url, other), what="own")
            assert [r.params["RecordingSid"] for r in own.received] == [other]
        [got] = receiver.received
        assert got.method == method and got.params["RecordingSid"] == sid
        assert got.signed_by(acct.token)

        cleared = run_recordings(cb_settings, "accounts", "set", "--status-callback", "", acct.sid)
        assert "no status callback" in cleared.stdout
        quiet = ingest(http, acct, demo_wav)["sid"]
        assert callback_rows(cb_settings.database_url, quiet) == []


def test_imported_recordings_get_the_accounts_callback(
    cb_settings: Settings, acct: Account, tmp_path: Any, demo_wav: bytes
) -> None:
    wav = tmp_path / "call.wav"
    wav.write_bytes(demo_wav)
    with Receiver() as receiver:
        run_recordings(cb_settings, "accounts", "set", "--status-callback", receiver.url, acct.sid)
        fallback = run_recordings(cb_settings, "import", "--account", acct.sid, "--json", str(wav))
        public = run_recordings(
            cb_settings,
            "import",
            "--account",
            acct.sid,
            "--json",
            str(wav),
            RECORDINGS_PUBLIC_URL="https://recordings.example.com/pbx",
        )
        import json

        first = json.loads(fallback.stdout)[0]["sid"]
        second = json.loads(public.stdout)[0]["sid"]
        with dispatching(cb_settings):
            for sid in (first, second):
                wait_until(lambda sid=sid: delivered(cb_settings.database_url, sid))
    urls = {r.params["RecordingSid"]: r.params["RecordingUrl"] for r in receiver.received}
    path = f"/2010-04-01/Accounts/{acct.sid}/Recordings"
    assert urls == {
        first: f"http://127.0.0.1:8000{path}/{first}",
        second: f"https://recordings.example.com/pbx{path}/{second}",
    }
    assert all(r.signed_by(acct.token) for r in receiver.received)


def test_an_account_without_a_sealed_token_gets_unsigned_callbacks_until_rotated(
    http: httpx.Client, cb_postgres: EmbeddedPostgres, cb_settings: Settings, demo_wav: bytes
) -> None:
    legacy = new_account(cb_postgres.dsn, sealed=False)
    with Receiver() as receiver:
        warned = run_recordings(
            cb_settings, "accounts", "set", "--status-callback", receiver.url, legacy.sid
        )
        assert f"recordings accounts rotate-token {legacy.sid}" in warned.stderr
        before = ingest(http, legacy, demo_wav)["sid"]
        with dispatching(cb_settings):
            wait_until(lambda: delivered(cb_settings.database_url, before))
        assert "X-Twilio-Signature" not in receiver.received[0].headers

        rotated = run_recordings(cb_settings, "accounts", "rotate-token", "--json", legacy.sid)
        import json

        token = json.loads(rotated.stdout)["auth_token"]
        again = run_recordings(
            cb_settings, "accounts", "set", "--status-callback", receiver.url, legacy.sid
        )
        assert again.stderr == ""
        after = ingest(http, legacy, demo_wav)["sid"]
        with dispatching(cb_settings):
            wait_until(lambda: delivered(cb_settings.database_url, after))
        assert receiver.received[1].signed_by(token)
        assert not receiver.received[1].signed_by(legacy.token)


def test_the_callback_commits_with_the_recording_or_not_at_all(
    http: httpx.Client, cb_postgres: EmbeddedPostgres, acct: Account, demo_wav: bytes
) -> None:
    dsn = cb_postgres.dsn
    fetch_rows(
        dsn,
        "CREATE FUNCTION refuse_callbacks() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'no callbacks today'; END; $$",
    )
    fetch_rows(
        dsn,
        "CREATE TRIGGER refuse_callbacks BEFORE INSERT ON callbacks"
        " FOR EACH ROW EXECUTE FUNCTION refuse_callbacks()",
    )
    try:
        failed = upload(
            http,
            acct,
            demo_wav,
            query={"RecordingStatusCallback": "http://127.0.0.1:9/hook"},
            expect=None,
        )
        assert failed.status_code >= 500
        # Without a callback the trigger is not reached and the recording is stored.
        stored = upload(http, acct, demo_wav).json()["sid"]
    finally:
        fetch_rows(dsn, "DROP TRIGGER refuse_callbacks ON callbacks")
        fetch_rows(dsn, "DROP FUNCTION refuse_callbacks()")
    sids = [
        r["sid"]
        for r in fetch_rows(dsn, "SELECT sid FROM recordings WHERE account_sid = $1", acct.sid)
    ]
    assert sids == [stored], "the recording of the refused callback must not be stored"
