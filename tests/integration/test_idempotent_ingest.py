"""Idempotency-Key on ingest: a retry after a lost 201 gets the first answer, not a twin."""

from __future__ import annotations

import concurrent.futures

import httpx

from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, new_account, upload
from tests.support.rows import recording_sids


def keyed(http: httpx.Client, account: Account, body: bytes, key: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return upload(http, account, body, expect=None, headers={"Idempotency-Key": key}, **kwargs)


def test_a_retry_with_the_key_gets_the_first_answer(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call = new_sid("CA")
    first = keyed(client, account, demo_wav, "call-1/part-1", call_sid=call)
    again = keyed(client, account, demo_wav, "call-1/part-1", call_sid=call)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert recording_sids(settings.database_url, account.sid) == [first.json()["sid"]]
    # Another key, or no key, is another recording.
    other = keyed(client, account, demo_wav, "call-1/part-2")
    assert other.json()["sid"] != first.json()["sid"]
    assert len(recording_sids(settings.database_url, account.sid)) == 2


def test_the_same_key_with_another_body_is_a_conflict(
    client: httpx.Client, account: Account, demo_wav: bytes
) -> None:
    assert keyed(client, account, demo_wav, "k").status_code == 201
    changed = keyed(client, account, demo_wav[:-2] + b"\x00\x01", "k")
    assert changed.status_code == 409
    assert "different request" in changed.json()["message"]


def test_the_same_key_and_bytes_with_other_parameters_is_a_conflict_never_a_replay(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call = new_sid("CA")
    first = keyed(client, account, demo_wav, "bound", call_sid=call)
    assert first.status_code == 201
    changes: list[dict[str, object]] = [
        {"call_sid": new_sid("CA")},  # another call's recording
        {"call_sid": call, "suffix": ".xml"},  # another format
        {"call_sid": call, "suffix": ""},
        {"call_sid": call, "query": {"Source": "Conference"}},  # any other field
        {"call_sid": call, "query": {"StartTime": "2026-11-27T10:11:12Z"}},
        {"call_sid": call, "query": {"RecordingStatusCallbackMethod": "GET"}},
    ]
    for change in changes:
        answer = keyed(client, account, demo_wav, "bound", **change)
        assert answer.status_code == 409, (change, answer.text)
        assert "idempotent-replayed" not in answer.headers
        error = answer.json() if "suffix" not in change else None
        if error is not None:
            assert error["status"] == 409
            assert "Idempotency-Key" in error["message"]
    # The same request again is still the replay; its parameters in another order too.
    again = keyed(client, account, demo_wav, "bound", call_sid=call)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert recording_sids(settings.database_url, account.sid) == [first.json()["sid"]]


def test_keys_belong_to_their_account(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    other = new_account(settings.database_url)
    mine = keyed(client, account, demo_wav, "shared")
    theirs = keyed(client, other, demo_wav, "shared")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["sid"] != theirs.json()["sid"]
    assert theirs.json()["account_sid"] == other.sid


def test_concurrent_requests_with_one_key_store_one_recording(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    call = new_sid("CA")  # one request, sent six times at once
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(
            pool.map(lambda _: keyed(client, account, demo_wav, "burst", call_sid=call), range(6))
        )
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["sid"] for a in answers}) == 1
    assert len(recording_sids(settings.database_url, account.sid)) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5


def test_a_failed_first_request_leaves_the_key_free(
    client: httpx.Client, settings: Settings, account: Account, demo_wav: bytes
) -> None:
    refused = keyed(client, account, b"not audio at all" * 100, "retry-me")
    assert refused.status_code == 422
    stored = keyed(client, account, demo_wav, "retry-me")
    assert stored.status_code == 201
    assert recording_sids(settings.database_url, account.sid) == [stored.json()["sid"]]


def test_malformed_keys_are_refused(
    client: httpx.Client, account: Account, demo_wav: bytes
) -> None:
    for bad in (b"", b"x" * 256, b"sp ace", "caf\u00e9".encode()):
        answer = upload(client, account, demo_wav, expect=None, headers={"Idempotency-Key": bad})
        assert answer.status_code == 400, (bad, answer.text)
