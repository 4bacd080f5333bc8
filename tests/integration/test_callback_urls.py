"""Callback URLs as receivers see them: signed over what goes on the wire (checked with
twilio-python's RequestValidator and twilio-node's validateRequest, each given the URL rebuilt
from Host and the request target, as apps do), refused at ingest when the HTTP client could not
send them, and logged without their query strings (where receivers keep their own secrets)."""

from __future__ import annotations

import logging
import logging.config
from pathlib import Path

import httpx
import pytest

from service.logs import logging_config
from service.settings import Settings
from tests.support.callbacks import callback_rows, dispatching, one_callback
from tests.support.clients import Account, upload
from tests.support.node import install_twilio_node, node_validates
from tests.support.receivers import Receiver, wait_until

pytestmark = pytest.mark.usefixtures("cb_clean")


@pytest.fixture
def http(cb_http: httpx.Client) -> httpx.Client:
    return cb_http


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_twilio_node(tmp_path_factory.mktemp("twilio-node"))


def _ingest(http: httpx.Client, account: Account, wav: bytes, url: str, method: str) -> str:
    query = {"RecordingStatusCallback": url, "RecordingStatusCallbackMethod": method}
    answer = upload(http, account, wav, query=query)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["sid"])


SPELLINGS = [
    "http://LOCALHOST:{port}/cb",
    "http://127.0.0.1:{port}/a/./b/../cb",
    "http://127.0.0.1:{port}/a/../../cb?x=1",
    "http://127.0.0.1:{port}/cb?",
    'http://127.0.0.1:{port}/cb?q="quoted"&r=<x>',
    "http://127.0.0.1:{port}/caf\u00e9/cb?n=\u00fc",
]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_signatures_validate_with_both_official_validators_whatever_the_spelling(
    http: httpx.Client,
    cb_settings: Settings,
    acct: Account,
    demo_wav: bytes,
    node_modules: Path,
    method: str,
) -> None:
    with Receiver() as receiver:
        urls = [spelling.format(port=receiver.port) for spelling in SPELLINGS]
        sids = [_ingest(http, acct, demo_wav, url, method) for url in urls]
        with dispatching(cb_settings):
            wait_until(
                lambda: all(
                    one_callback(cb_settings.database_url, sid)["status"] != "pending"
                    for sid in sids
                ),
                what="every callback settled",
            )
        statuses = [one_callback(cb_settings.database_url, sid)["status"] for sid in sids]
        assert statuses == ["delivered"] * len(urls), list(zip(urls, statuses, strict=True))
        got = {r.params["RecordingSid"]: r for r in receiver.received}
    python_ok = [got[sid].signed_by(acct.token) for sid in sids]
    cases = [
        (
            acct.token,
            got[sid].headers.get("X-Twilio-Signature", ""),
            got[sid].url,
            got[sid].params if method == "POST" else {},
        )
        for sid in sids
    ]
    node_ok = node_validates(node_modules, cases)
    assert python_ok == [True] * len(urls), list(zip(urls, python_ok, strict=True))
    assert node_ok == [True] * len(urls), list(zip(urls, node_ok, strict=True))
    # Another token validates none of them, with either library.
    wrong = [(("0" * 32), *case[1:]) for case in cases]
    assert node_validates(node_modules, wrong) == [False] * len(urls)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    [
        "http://[::1]x/cb",
        "http://[::1]:x/cb",
        "http://exa\u00admple..test/cb",
    ],
)
def test_a_url_the_client_could_not_send_is_refused_at_ingest(
    http: httpx.Client, cb_settings: Settings, acct: Account, demo_wav: bytes, url: str
) -> None:
    answer = upload(http, acct, demo_wav, query={"RecordingStatusCallback": url}, expect=400)
    body = answer.json()
    assert body["status"] == 400, body
    assert body["message"].startswith("RecordingStatusCallback is refused: the URL")
    assert all(row["url"] != url for row in callback_rows(cb_settings.database_url))


def test_callback_urls_are_logged_without_their_query_strings(
    http: httpx.Client,
    cb_settings: Settings,
    acct: Account,
    demo_wav: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The service's own logging setup (as `recordings worker` applies it), then every record
    # of every logger captured.
    logging.config.dictConfig(logging_config("text", "DEBUG"))
    logging.getLogger().addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    secret = "s3cr3t-receiver-token"
    try:
        with Receiver(script=[500]) as receiver:
            url = f"http://127.0.0.1:{receiver.port}/hooks?token={secret}"
            sid = _ingest(http, acct, demo_wav, url, "POST")
            with dispatching(cb_settings):
                wait_until(
                    lambda: one_callback(cb_settings.database_url, sid)["status"] == "delivered",
                    what="delivery after one retry",
                )
    finally:
        logging.getLogger().removeHandler(caplog.handler)
    lines = [record.getMessage() for record in caplog.records]
    mine = [line for line in lines if sid in line]
    assert len(mine) >= 2, lines  # the retry and the delivery are logged...
    assert any(f"127.0.0.1:{receiver.port}/hooks" in line for line in mine)
    assert not [line for line in lines if secret in line]  # ...without the receiver's secret
