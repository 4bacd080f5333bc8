"""`recordings import-twilio`: a Twilio account's recordings (and its subaccounts') brought
over with every SID kept (design section 14)."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import date
from typing import TYPE_CHECKING

import click

from service.cli.base import account_sid_param, pass_settings, run
from service.settings import Settings

if TYPE_CHECKING:
    from service.imports.summary import Summary


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _account(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else account_sid_param(value)


class _Progress:
    """A status line redrawn at most once a second on a terminal; nothing on a pipe."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, summary: Summary) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 1.0:
            return
        self._last = now
        click.echo(f"\r\x1b[2K{summary.progress_line()}", nl=False, err=True)

    def close(self) -> None:
        if self.enabled:
            click.echo("", err=True)


@click.command("import-twilio")
@click.option(
    "--account",
    "account_sid",
    default=None,
    callback=_account,
    help="The local AccountSid to import into (default: the source's own).",
)
@click.option(
    "--api-url",
    default="https://api.twilio.com",
    show_default=True,
    help="The Twilio-compatible API to read (this service included).",
)
@click.option(
    "--include-subaccounts", is_flag=True, help="Also each subaccount, into one of the same SID."
)
@click.option(
    "--keep-auth-token",
    is_flag=True,
    help="A local account created now takes the source's AuthToken instead of a new one.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    help="Requests to the source at once.",
)
@click.option(
    "--date-created-after", default=None, callback=_date, metavar="D", help="From this UTC day."
)
@click.option(
    "--date-created-before",
    default=None,
    callback=_date,
    metavar="D",
    help="Up to this UTC day.",
)
@click.option("--derive", is_flag=True, help="Queue MP3 and peaks now, not on first request.")
@click.option("--dry-run", is_flag=True, help="Count and size only; copy nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--delete-source",
    is_flag=True,
    help="Delete each recording at the source once its copy here is verified (needs --yes).",
)
@click.option("--yes", is_flag=True, help="Confirm --delete-source.")
@pass_settings
def import_twilio(
    settings: Settings,
    account_sid: str | None,
    api_url: str,
    include_subaccounts: bool,
    keep_auth_token: bool,
    concurrency: int,
    date_created_after: date | None,
    date_created_before: date | None,
    derive: bool,
    dry_run: bool,
    as_json: bool,
    delete_source: bool,
    yes: bool,
) -> None:
    """Copy a Twilio account's recordings here, every AccountSid and RecordingSid kept.

    Source credentials come from TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or with
    TWILIO_API_KEY and TWILIO_API_SECRET. Exits 1 when any recording failed.
    """
    from service.imports.importer import Plan
    from service.imports.session import run_import
    from service.imports.source import Credentials

    if delete_source and not yes:
        raise click.UsageError("--delete-source deletes recordings at the source: add --yes")
    if delete_source and dry_run:
        raise click.UsageError("--delete-source and --dry-run contradict each other")
    try:
        credentials = Credentials.from_environment(os.environ)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if keep_auth_token and credentials.auth_token is None:
        raise click.UsageError("--keep-auth-token needs TWILIO_AUTH_TOKEN, not an API key")
    if not api_url.startswith(("http://", "https://")):
        raise click.BadParameter("an http:// or https:// URL", param_hint="--api-url")
    plan = Plan(
        concurrency=concurrency,
        created_after=date_created_after,
        created_before=date_created_before,
        derive=derive,
        dry_run=dry_run,
        delete_source=delete_source,
        keep_auth_token=keep_auth_token,
    )
    progress = _Progress()

    def created(account_sid: str, auth_token: str) -> None:
        # Printed once, like `recordings accounts create`; stdout stays the summary's.
        click.echo(f"created account {account_sid}, AuthToken: {auth_token}", err=True)

    try:
        summary = run(
            run_import(
                settings,
                credentials,
                api_url,
                plan,
                local_account=account_sid,
                include_subaccounts=include_subaccounts,
                on_account_created=created,
                on_progress=progress,
            )
        )
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(summary.as_json()))
    else:
        verb = "would copy" if dry_run else "copied"
        click.echo(
            f"{verb} {summary.copied} recordings ({summary.bytes} bytes),"
            f" skipped {sum(summary.skipped.values())}, failed {len(summary.failed)}"
            f" in {summary.seconds:.1f} s"
        )
        for reason, count in sorted(summary.skipped.items()):
            click.echo(f"  skipped {count}: {reason}")
        if summary.deleted_at_source:
            click.echo(f"  deleted at the source after verification: {summary.deleted_at_source}")
    for failure in summary.failed:
        click.echo(f"failed {failure.sid}: {failure.reason}", err=True)
    if summary.failed:
        sys.exit(1)
