"""Credentials across processes: the operator's `recordings keys` and `accounts create --parent`,
and revocations made through one replica refused by the other on its very next request (nothing
is cached, so "within a second" holds without any waiting)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from service.settings import Settings
from tests.support.clients import Account, new_account
from tests.support.credentials import create_key, create_subaccount, set_status
from tests.support.stack import recordings_env, recordings_replicas, run_recordings


def test_keys_and_subaccounts_from_the_command_line(
    settings: Settings, client: httpx.Client, account: Account
) -> None:
    made = json.loads(
        run_recordings(
            settings, "keys", "create", "--account", account.sid, "--name", "ci", "--json"
        ).stdout
    )
    assert set(made) == {"sid", "secret"} and len(made["secret"]) == 32
    path = f"/2010-04-01/Accounts/{account.sid}/Recordings.json"
    assert client.get(path, auth=(made["sid"], made["secret"])).status_code == 200
    listed = json.loads(
        run_recordings(settings, "keys", "list", "--account", account.sid, "--json").stdout
    )
    assert [(k["sid"], k["friendly_name"]) for k in listed] == [(made["sid"], "ci")]
    assert "secret" not in listed[0]
    # Deleting asks first; --yes does not.
    asked = run_recordings(settings, "keys", "delete", made["sid"], check=False)
    assert asked.returncode != 0
    run_recordings(settings, "keys", "delete", made["sid"], "--yes")
    assert client.get(path, auth=(made["sid"], made["secret"])).status_code == 401
    missing = run_recordings(settings, "keys", "delete", made["sid"], "--yes", check=False)
    assert missing.returncode == 6 and "no API key" in missing.stderr
    bad = run_recordings(settings, "keys", "list", "--account", "nope", check=False)
    assert bad.returncode == 2

    sub = json.loads(
        run_recordings(settings, "accounts", "create", "--parent", account.sid, "--json").stdout
    )
    sub_path = f"/2010-04-01/Accounts/{sub['account_sid']}/Recordings.json"
    assert client.get(sub_path, auth=account.auth).status_code == 200
    assert client.get(sub_path, auth=(sub["account_sid"], sub["auth_token"])).status_code == 200
    assert client.get(path, auth=(sub["account_sid"], sub["auth_token"])).status_code == 403
    # One level deep, as Twilio's; and a parent is not deleted before its subaccounts.
    deeper = run_recordings(
        settings, "accounts", "create", "--parent", sub["account_sid"], check=False
    )
    assert deeper.returncode == 1 and "subaccount" in deeper.stderr
    refused = run_recordings(settings, "accounts", "delete", account.sid, "--yes", check=False)
    assert refused.returncode == 1 and "subaccounts" in refused.stderr
    everyone = json.loads(run_recordings(settings, "accounts", "list", "--json").stdout)
    row = next(a for a in everyone if a["account_sid"] == sub["account_sid"])
    assert row["parent_sid"] == account.sid and row["status"] == "active"
    plain = run_recordings(settings, "accounts", "list").stdout
    assert f"{sub['account_sid']}" in plain and f"subaccount of {account.sid}" in plain


def test_revocations_through_one_replica_hold_on_the_other_at_once(
    settings: Settings, tmp_path: Path
) -> None:
    parent = new_account(settings.database_url)
    with (
        recordings_replicas(recordings_env(settings), tmp_path) as (one, two),
        httpx.Client(base_url=one, timeout=30) as first,
        httpx.Client(base_url=two, timeout=30) as second,
    ):
        sub = create_subaccount(first, parent.auth)
        key = create_key(first, parent.auth, parent.sid)
        path = f"/2010-04-01/Accounts/{parent.sid}/Recordings.json"
        sub_path = f"/2010-04-01/Accounts/{sub.sid}/Recordings.json"
        # Each credential has just been used on the second replica ...
        assert second.get(path, auth=key).status_code == 200
        assert second.get(sub_path, auth=sub.auth).status_code == 200
        assert second.get(path, auth=parent.auth).status_code == 200

        # ... a deleted key:
        gone = first.delete(
            f"/2010-04-01/Accounts/{parent.sid}/Keys/{key[0]}.json", auth=parent.auth
        )
        assert gone.status_code == 204
        assert second.get(path, auth=key).status_code == 401

        # ... a suspended account:
        assert set_status(first, parent.auth, sub.sid, "suspended").status_code == 200
        refused = second.get(sub_path, auth=sub.auth)
        assert refused.status_code == 401 and refused.json()["code"] == 20005

        # ... and a promoted-away token.
        secondary = first.post("/v1/AuthTokens/Secondary", auth=parent.auth).json()
        new = (parent.sid, secondary["secondary_auth_token"])
        assert second.get(path, auth=parent.auth).status_code == 200
        assert first.post("/v1/AuthTokens/Promote", auth=new).status_code == 200
        assert second.get(path, auth=parent.auth).status_code == 401
        assert second.get(path, auth=new).status_code == 200
