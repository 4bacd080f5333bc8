"""`recordings keys ...`: an account's API keys made (the secret printed once), listed, deleted."""

from __future__ import annotations

import json

import click

from service.cli.base import account_sid_param, no_account, pass_settings, run
from service.operator_errors import NOT_FOUND, OperatorError
from service.settings import Settings


def _key_sid(value: str) -> str:
    from service.accounts.auth import is_key_sid

    if not is_key_sid(value):
        raise click.BadParameter(f"{value!r} is not an API key SID (SK + 32 hex digits)")
    return value


@click.group()
def keys() -> None:
    """Manage API keys (standard keys: everything but accounts, keys and tokens)."""


@keys.command("create")
@click.option(
    "--account", "account_sid", required=True, callback=lambda _c, _p, v: account_sid_param(v)
)
@click.option("--name", default="", help="A friendly name (64 characters at most).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def keys_create(settings: Settings, account_sid: str, name: str, as_json: bool) -> None:
    """Create a key and print its SID and secret (the secret is shown only now)."""
    from db.accounts import fetch_account
    from service.accounts.keys import MAX_NAME, create_key
    from service.database import open_database

    if len(name) > MAX_NAME:
        raise click.BadParameter(f"at most {MAX_NAME} characters", param_hint="--name")

    async def go() -> tuple[str, str] | None:
        async with open_database(settings, max_size=1) as pool:
            if await fetch_account(pool, account_sid) is None:
                return None
            made = await create_key(pool, account_sid, name)
        return made.key.sid, made.secret

    made = run(go())
    if made is None:
        raise no_account(account_sid)
    sid, secret = made
    if as_json:
        click.echo(json.dumps({"sid": sid, "secret": secret}))
    else:
        click.echo(f"Sid:    {sid}\nSecret: {secret}")


@keys.command("list")
@click.option(
    "--account", "account_sid", required=True, callback=lambda _c, _p, v: account_sid_param(v)
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def keys_list(settings: Settings, account_sid: str, as_json: bool) -> None:
    """List the account's keys (never their secrets)."""
    from db.accounts import fetch_account
    from db.api_keys import ApiKey, list_keys
    from service.database import open_database
    from service.http.representations import rfc2822

    async def go() -> list[ApiKey] | None:
        async with open_database(settings, max_size=1) as pool:
            if await fetch_account(pool, account_sid) is None:
                return None
            return await list_keys(pool, account_sid, limit=1_000_000, offset=0)

    found = run(go())
    if found is None:
        raise no_account(account_sid)
    listed = [
        {"sid": k.sid, "friendly_name": k.friendly_name, "date_created": rfc2822(k.date_created)}
        for k in found
    ]
    if as_json:
        click.echo(json.dumps(listed))
        return
    for item in listed:
        click.echo(f"{item['sid']}  {item['date_created']}  {item['friendly_name']}".rstrip())


@keys.command("delete")
@click.argument("key_sid", callback=lambda _c, _p, v: _key_sid(v))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def keys_delete(settings: Settings, key_sid: str, yes: bool) -> None:
    """Delete a key: it stops authenticating at once, on every replica."""
    from db.api_keys import delete_key, find_key
    from service.database import open_database

    if not yes:
        click.confirm(f"Delete the API key {key_sid}?", abort=True, err=True)

    async def go() -> str | None:
        async with open_database(settings, max_size=1) as pool:
            key = await find_key(pool, key_sid)
            if key is None or not await delete_key(pool, key.account_sid, key.sid):
                return None
            return key.account_sid

    account_sid = run(go())
    if account_sid is None:
        raise OperatorError(f"no API key {key_sid}", NOT_FOUND)
    click.echo(f"deleted {key_sid} (of {account_sid})")
