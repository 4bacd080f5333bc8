"""`recordings accounts ...`: accounts created, changed, listed, given new tokens, removed."""

from __future__ import annotations

import json
from typing import Any

import click

from service.cli.base import account_sid_param, no_account, pass_settings, run
from service.settings import Settings


@click.group()
def accounts() -> None:
    """Manage accounts."""


@accounts.command("create")
@click.option("--name", default="", help="A friendly name.")
@click.option(
    "--parent",
    "parent_sid",
    default=None,
    metavar="AC...",
    callback=lambda _c, _p, v: None if v is None else account_sid_param(v),
    help="Make a subaccount of this account: its credentials reach the new one.",
)
@click.option(
    "--sid",
    default=None,
    metavar="AC...",
    help="Keep this AccountSid (an account brought over from Twilio) instead of a new one.",
)
@click.option(
    "--auth-token",
    default=None,
    metavar="T",
    help="Keep this AuthToken (32 hex digits, as Twilio's) instead of a new one.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def accounts_create(
    settings: Settings,
    name: str,
    parent_sid: str | None,
    sid: str | None,
    auth_token: str | None,
    as_json: bool,
) -> None:
    """Create an account and print its AccountSid and AuthToken (shown only now)."""
    import re

    from db.accounts import fetch_account
    from service.accounts.registry import create_account
    from service.accounts.sealing import sealer_for
    from service.database import open_database
    from service.operator_errors import OperatorError

    if sid is not None:
        account_sid_param(sid)
    if auth_token is not None and not re.fullmatch(r"[0-9a-f]{32}", auth_token):
        raise click.BadParameter(
            "an AuthToken is 32 lowercase hex digits", param_hint="--auth-token"
        )

    async def go() -> tuple[str, str]:
        async with open_database(settings, max_size=1) as pool:
            if sid is not None and await fetch_account(pool, sid) is not None:
                raise OperatorError(f"account {sid} exists already")
            new = await create_account(
                pool,
                name,
                sealer=sealer_for(settings.secret_key),
                parent_sid=parent_sid,
                sid=sid,
                auth_token=auth_token,
            )
        return new.account_sid, new.auth_token

    sid_made, token = run(go())
    if as_json:
        click.echo(json.dumps({"account_sid": sid_made, "auth_token": token}))
    else:
        click.echo(f"AccountSid: {sid_made}\nAuthToken:  {token}")


@accounts.command("set")
@click.option(
    "--enforce-media-auth/--no-enforce-media-auth",
    default=None,
    help="Whether fetching this account's media needs its credentials.",
)
@click.option(
    "--status-callback",
    metavar="URL",
    default=None,
    help="The default RecordingStatusCallback of the account's recordings; '' clears it.",
)
@click.option(
    "--status-callback-method",
    type=click.Choice(["POST", "GET"], case_sensitive=False),
    default=None,
    help="How that URL is called (POST unless set).",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    metavar="ORIGIN",
    multiple=True,
    help="An origin (https://app.example) whose pages may read private media with credentials;"
    " repeat for several; replaces the list.",
)
@click.option("--no-cors-origins", is_flag=True, help="Clear the list of CORS origins.")
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Delete the account's recordings older than N days; 0 clears the account's own policy"
    " (RECORDINGS_RETENTION_DAYS then applies).",
)
@click.option("--no-retention", is_flag=True, help="Clear the account's own retention policy.")
@click.option(
    "--encryption-key",
    metavar="CR...",
    default=None,
    help="Store the account's new recordings encrypted under this public key of its own"
    " (registered through /v1/Credentials/PublicKeys).",
)
@click.option(
    "--no-encryption", is_flag=True, help="Store the account's new recordings in the clear."
)
@click.argument("account_sid")
@pass_settings
def accounts_set(
    settings: Settings,
    enforce_media_auth: bool | None,
    status_callback: str | None,
    status_callback_method: str | None,
    cors_origins: tuple[str, ...],
    no_cors_origins: bool,
    retention_days: int | None,
    no_retention: bool,
    encryption_key: str | None,
    no_encryption: bool,
    account_sid: str,
) -> None:
    """Change an account's settings (any of the options, at least one)."""
    from service.accounts.changes import AccountChanges, change_account, parse_origin
    from service.callbacks.guard import UrlRefused
    from service.errors import ServiceError
    from service.sids import is_account_sid, is_public_key_sid

    if not is_account_sid(account_sid):
        raise click.BadParameter("not an AccountSid", param_hint="ACCOUNT_SID")
    if cors_origins and no_cors_origins:
        raise click.UsageError("--cors-origin and --no-cors-origins contradict each other")
    try:
        origins = tuple(parse_origin(o) for o in cors_origins)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--cors-origin") from exc
    new_origins = () if no_cors_origins else origins or None
    if retention_days is not None and no_retention:
        raise click.UsageError("--retention-days and --no-retention contradict each other")
    new_retention = 0 if no_retention else retention_days
    if encryption_key is not None and no_encryption:
        raise click.UsageError("--encryption-key and --no-encryption contradict each other")
    if encryption_key is not None and not is_public_key_sid(encryption_key):
        raise click.BadParameter(
            f"{encryption_key!r} is not a public key SID (CR + 32 hex digits)",
            param_hint="--encryption-key",
        )
    new_encryption = "" if no_encryption else encryption_key
    if (
        enforce_media_auth is None
        and status_callback is None
        and status_callback_method is None
        and new_origins is None
        and new_retention is None
        and new_encryption is None
    ):
        raise click.UsageError(
            "nothing to change: give --enforce-media-auth/--no-enforce-media-auth,"
            " --status-callback, --status-callback-method, --cors-origin, --no-cors-origins,"
            " --retention-days, --no-retention, --encryption-key or --no-encryption"
        )
    changes = AccountChanges(
        enforce_media_auth=enforce_media_auth,
        status_callback=status_callback,
        status_callback_method=status_callback_method.upper() if status_callback_method else None,
        cors_origins=new_origins,
        retention_days=new_retention,
        encryption_key=new_encryption,
    )
    try:
        account = run(change_account(settings, account_sid, changes))
    except UrlRefused as exc:
        raise click.BadParameter(str(exc), param_hint="--status-callback") from exc
    except ServiceError as exc:
        # The only one change_account raises: a key that is not this account's.
        raise click.BadParameter(exc.message, param_hint="--encryption-key") from exc
    if account is None:
        raise no_account(account_sid)
    if enforce_media_auth is not None:
        click.echo(f"{account_sid}: enforce media auth {'on' if enforce_media_auth else 'off'}")
    if new_origins is not None:
        listed = " ".join(account.cors_origins) or "none"
        click.echo(f"{account_sid}: CORS origins with credentials: {listed}")
    if new_retention is not None:
        if account.retention_days:
            click.echo(f"{account_sid}: recordings kept {account.retention_days} days")
        elif settings.retention_days:
            click.echo(
                f"{account_sid}: no retention of its own (RECORDINGS_RETENTION_DAYS:"
                f" {settings.retention_days} days)"
            )
        else:
            click.echo(f"{account_sid}: no retention, recordings kept forever")
    if new_encryption is not None:
        if account.encryption_key_sid:
            click.echo(
                f"{account_sid}: new recordings encrypted under public key"
                f" {account.encryption_key_sid}"
            )
        else:
            click.echo(f"{account_sid}: new recordings stored in the clear")
    if status_callback is not None or status_callback_method is not None:
        if account.status_callback:
            method = account.status_callback_method
            click.echo(f"{account_sid}: status callback {method} {account.status_callback}")
        else:
            click.echo(f"{account_sid}: no status callback")
    if account.status_callback and (settings.secret_key is None or account.token_sealed is None):
        why = (
            "RECORDINGS_SECRET_KEY is not set"
            if settings.secret_key is None
            else "its AuthToken was made before the server kept tokens sealed"
        )
        click.echo(
            f"recordings: warning: {account_sid}'s callbacks go out unsigned ({why}): set"
            f" RECORDINGS_SECRET_KEY, then run `recordings accounts rotate-token {account_sid}`",
            err=True,
        )


@accounts.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def accounts_list(settings: Settings, as_json: bool) -> None:
    """List the accounts (never their tokens)."""
    from db.accounts import list_accounts
    from service.database import open_database
    from service.http.representations import rfc2822

    async def go() -> list[dict[str, Any]]:
        async with open_database(settings, max_size=1) as pool:
            found = await list_accounts(pool)
        return [
            {
                "account_sid": account.sid,
                "friendly_name": account.friendly_name,
                "parent_sid": account.parent_sid,
                "status": account.status,
                "enforce_media_auth": account.enforce_media_auth,
                "cors_origins": list(account.cors_origins),
                "retention_days": account.retention_days,
                "encryption_key_sid": account.encryption_key_sid,
                "recordings": live,
                "date_created": rfc2822(account.date_created),
                "status_callback": account.status_callback,
                "status_callback_method": account.status_callback_method,
                # Whether its callbacks can be signed (a sealed copy of its token exists).
                "token_sealed": account.token_sealed is not None,
            }
            for account, live in found
        ]

    listed = run(go())
    if as_json:
        click.echo(json.dumps(listed))
        return
    for item in listed:
        auth = "  media auth" if item["enforce_media_auth"] else ""
        if item["status_callback"]:
            auth += f"  callback {item['status_callback_method']} {item['status_callback']}"
        if item["status"] != "active":
            auth += f"  {item['status']}"
        if item["parent_sid"]:
            auth += f"  subaccount of {item['parent_sid']}"
        name = f"  {item['friendly_name']}" if item["friendly_name"] else ""
        click.echo(f"{item['account_sid']}  {item['recordings']:>9} recordings{auth}{name}")


@accounts.command("rotate-token")
@click.argument("account_sid", callback=lambda _c, _p, v: account_sid_param(v))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def accounts_rotate_token(settings: Settings, account_sid: str, as_json: bool) -> None:
    """Give the account a new AuthToken, printed only now; the old one stops working."""
    from service.accounts.registry import rotate_token
    from service.accounts.sealing import sealer_for
    from service.database import open_database

    async def go() -> str | None:
        async with open_database(settings, max_size=1) as pool:
            return await rotate_token(pool, account_sid, sealer=sealer_for(settings.secret_key))

    token = run(go())
    if token is None:
        raise no_account(account_sid)
    if as_json:
        click.echo(json.dumps({"account_sid": account_sid, "auth_token": token}))
    else:
        click.echo(f"AccountSid: {account_sid}\nAuthToken:  {token}")


@accounts.command("delete")
@click.argument("account_sid", callback=lambda _c, _p, v: account_sid_param(v))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_settings
def accounts_delete(settings: Settings, account_sid: str, yes: bool) -> None:
    """Delete an account: its recordings as DELETE does, then the account."""
    from service.accounts.registry import delete_account
    from service.services import open_services

    if not yes:
        click.confirm(
            f"Delete {account_sid} and every one of its recordings?", abort=True, err=True
        )

    async def go() -> int | None:
        async with open_services(settings) as services:
            return await delete_account(services.catalog, account_sid)

    deleted = run(go())
    if deleted is None:
        raise no_account(account_sid)
    click.echo(f"deleted {account_sid} and {deleted} recordings")
