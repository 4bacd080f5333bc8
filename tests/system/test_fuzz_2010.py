"""The 2010 face fuzzed from its own OpenAPI document: no 5xx, and every answer conforms."""

from __future__ import annotations

import itertools
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.faces.v2010.document import openapi_document
from service.settings import Settings
from tests.support.api2010 import upload
from tests.support.clients import Account, new_account
from tests.support.fuzz import CHECKS, operations
from tests.support.stack import ServerThread

MEDIA = ["", ".wav", ".mp3"]
CONFERENCE = "CF" + "5" * 32
OPERATIONS = operations(openapi_document())
_turn = itertools.count()


@pytest.fixture(scope="module")
def target(server: ServerThread, settings: Settings, demo_wav: bytes) -> tuple[Account, str, str]:
    """An account with a recording of a known call and conference, so generated requests reach
    real rows."""
    account = new_account(settings.database_url)
    call = "CA" + "5" * 32
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        recording = upload(
            http, settings, account, demo_wav, call_sid=call, ConferenceSid=CONFERENCE
        ).json()["sid"]
    return account, recording, call


@pytest.mark.parametrize("label", sorted(OPERATIONS))
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_face_conforms_to_its_document(
    server: ServerThread,
    target: tuple[Account, str, str],
    label: str,
    data: st.DataObject,
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy())
    account, sid, call = target
    turn = next(_turn)
    path = case.path_parameters if case.path_parameters is not None else {}
    # Half the cases use the real account, call and recording (deletes excepted: one
    # would end the recording for every later case), so the fuzzing gets past auth and lookups.
    if turn % 2 == 0 and "account_sid" in path:
        path["account_sid"] = account.sid
        if "call_sid" in path:
            path["call_sid"] = call
        if "conference_sid" in path:
            path["conference_sid"] = CONFERENCE
        if case.method.upper() != "DELETE":
            if "sid" in path:
                path["sid"] = sid
            if "name" in path:
                path["name"] = sid + MEDIA[turn // 2 % len(MEDIA)]
    response = case.call(
        base_url=server.base_url, headers={"Authorization": account.basic_auth}, timeout=30
    )
    case.validate_response(response, checks=CHECKS)


def test_every_route_is_documented_and_fuzzed() -> None:
    assert set(OPERATIONS) == {
        "GET /2010-04-01/Accounts/{account_sid}/Recordings.json",
        "GET /2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Recordings.json",
        "GET /2010-04-01/Accounts/{account_sid}/Recordings/{sid}.json",
        "DELETE /2010-04-01/Accounts/{account_sid}/Recordings/{sid}.json",
        "GET /2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Recordings/{sid}.json",
        "DELETE /2010-04-01/Accounts/{account_sid}/Calls/{call_sid}/Recordings/{sid}.json",
        "GET /2010-04-01/Accounts/{account_sid}/Conferences/{conference_sid}/Recordings.json",
        "GET /2010-04-01/Accounts/{account_sid}/Conferences/{conference_sid}/Recordings/{sid}.json",
        "DELETE /2010-04-01/Accounts/{account_sid}/Conferences/{conference_sid}"
        "/Recordings/{sid}.json",
        "GET /2010-04-01/Accounts/{account_sid}/Recordings/{name}",
        "DELETE /2010-04-01/Accounts/{account_sid}/Recordings/{name}",
        "GET /2010-04-01/Accounts/{account_sid}/Recordings/{sid}/Transcriptions.json",
        "GET /2010-04-01/Accounts/{account_sid}/Recordings/{sid}/AddOnResults.json",
    }
