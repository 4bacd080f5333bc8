"""The API fuzzed from its own OpenAPI schema: no 5xx, and every answer conforms to the schema."""

from __future__ import annotations

import itertools
import os

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.faces.ingest.document import openapi_document as ingest_document
from service.settings import Settings
from tests.support.clients import INGEST_TOKEN, Account, new_account, uploaded_sid
from tests.support.fuzz import CHECKS, operations
from tests.support.stack import ServerThread

SUFFIXES = ["", ".wav", ".mp3", ".xml", ".json"]
_turn = itertools.count()


@pytest.fixture(scope="module")
def target(server: ServerThread, settings: Settings, demo_wav: bytes) -> tuple[Account, str]:
    """An account with one recording, so that generated requests also reach real rows."""
    account = new_account(settings.database_url)
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        return account, uploaded_sid(http, account, demo_wav)


# The schemas the app itself publishes (the public one at /openapi.json, ingest's at
# /internal/openapi.json), read without a server.
OPERATIONS = operations(create_app(Settings()).openapi(), ingest_document())


@pytest.mark.parametrize("label", sorted(OPERATIONS))
# 40 examples per operation in CI; FUZZ_EXAMPLES=2000 for the longer documented run.
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_api_conforms_to_its_schema(
    server: ServerThread, target: tuple[Account, str], label: str, data: st.DataObject
) -> None:
    case = data.draw(OPERATIONS[label].as_strategy())
    account, sid = target
    turn = next(_turn)
    path = case.path_parameters if case.path_parameters is not None else {}
    # Half the cases use the real account (and, for the instance, the real recording), so
    # the fuzzing reaches past authentication and lookups instead of stopping at 401/404.
    if turn % 2 == 0 and "account_sid" in path:
        path["account_sid"] = account.sid
        if "name" in path and case.method.upper() == "GET":
            path["name"] = sid + SUFFIXES[turn // 2 % len(SUFFIXES)]
        if "sid" in path:
            path["sid"] = sid
    if case.path.startswith("/internal/"):
        headers = {"Authorization": f"Bearer {INGEST_TOKEN}"}
    else:
        headers = {"Authorization": account.basic_auth}
    response = case.call(base_url=server.base_url, headers=headers, timeout=30)
    case.validate_response(response, checks=CHECKS)


def test_every_route_is_fuzzed() -> None:
    assert set(OPERATIONS) == {
        "GET /2008-08-01/Accounts/{account_sid}/Recordings/{sid}/Peaks.json",
        "GET /2008-08-01/Accounts/{account_sid}/Recordings/{name}",
        "DELETE /2008-08-01/Accounts/{account_sid}/Recordings/{name}",
        "GET /2008-08-01/Accounts/{account_sid}/Recordings",
        "GET /2008-08-01/Accounts/{account_sid}/Recordings{suffix}",
        "POST /internal/Accounts/{account_sid}/Recordings{suffix}",
    }
