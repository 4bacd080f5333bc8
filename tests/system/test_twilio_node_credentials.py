"""twilio-node, unmodified and fresh from the npm registry, with an API key, a subaccount's
token and its parent's, and the secondary AuthToken's rotation."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.support.api2010 import upload
from tests.support.clients import Account
from tests.support.credentials import create_subaccount
from tests.support.node import install_twilio_node, run_node

SCRIPT = Path(__file__).with_name("twilio_node_credentials.js")


@pytest.fixture(scope="module")
def twilio_node(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_twilio_node(tmp_path_factory.mktemp("twilio-node"))


def test_twilio_node_with_every_credential_kind(
    twilio_node: Path,
    server,  # type: ignore[no-untyped-def]
    client: httpx.Client,
    settings: Settings,
    account: Account,
    demo_wav: bytes,
) -> None:
    sub = create_subaccount(client, account.auth, "customer")
    in_parent = upload(client, settings, account, demo_wav).json()["sid"]
    in_sub = upload(client, settings, sub, demo_wav).json()["sid"]
    out = run_node(
        twilio_node,
        SCRIPT,
        {
            "baseUrl": server.base_url,
            "accountSid": account.sid,
            "authToken": account.token,
            "subSid": sub.sid,
            "subToken": sub.token,
            "parentRecording": in_parent,
        },
    )
    assert out["keySecretLength"] == 32
    assert out["keyList"] == [in_parent]
    assert out["keyFetch"] == account.sid
    assert out["keyMakesKey"] == {"status": 403, "code": 20403}
    assert out["keyMakesAccount"] == {"status": 403, "code": 20403}
    assert len(out["keysListed"]) == 1
    assert out["keyRemoved"] is True
    assert out["keyAfterRemove"] == {"status": 401, "code": 20003}
    assert out["subOwn"] == [in_sub]
    assert out["parentActing"] == [in_sub]
    assert out["subOnParent"] == {"status": 403, "code": 20403}
    assert out["made"] == {"owner": account.sid, "status": "active", "hasToken": True}
    assert out["family"][:2] == [account.sid, sub.sid] and len(out["family"]) == 3
    assert out["suspended"] == "suspended"
    assert out["suspendedUse"]["status"] == 401
    assert out["bothWork"] == [1, 1]
    assert out["promotedIsSecondary"] is True
    assert out["oldAfterPromotion"] == {"status": 401, "code": 20003}
    assert out["newAfterPromotion"] == in_parent
