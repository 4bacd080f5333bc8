"""``recordings``: the operator's whole interface to the service.

Commands import what they need when they run, so ``--help`` and the quick commands do not pay
for the web framework, ffmpeg's wrappers or the S3 client.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from service.settings import Settings

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


@click.group()
@click.pass_context
def main(ctx: click.Context) -> None:
    """Twilio-compatible Recordings service (API 2008-08-01)."""
    from service.logs import configure_logging

    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = settings


pass_settings = click.make_pass_decorator(Settings)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@pass_settings
def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    from service.http.server import http_protocol
    from service.logs import logging_config

    # The factory reads the settings again in the server process (uvicorn may fork workers).
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http=http_protocol(settings.max_header_bytes),
        timeout_graceful_shutdown=30,
        access_log=False,
        log_config=logging_config(settings.log_format, settings.log_level),
    )


@main.command()
@pass_settings
def worker(settings: Settings) -> None:
    """Make MP3s from the job queue, RECORDINGS_FFMPEG_MAX_PROCESSES ffmpeg runs at a time."""
    from service.mp3.worker import run_worker

    _run(run_worker(settings))


@main.command()
@pass_settings
def migrate(settings: Settings) -> None:
    """Apply database migrations and create the storage bucket when it is missing."""
    from service.migrate import migrate_all

    done = _run(migrate_all(settings))
    click.echo("\n".join(f"applied {d}" for d in done) or "up to date")


@main.group()
def accounts() -> None:
    """Manage accounts."""


@accounts.command("create")
@click.option("--name", default="", help="A friendly name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def accounts_create(settings: Settings, name: str, as_json: bool) -> None:
    """Create an account and print its AccountSid and AuthToken (shown only now)."""
    from db.pool import open_pool
    from service.accounts.registry import create_account

    async def go() -> tuple[str, str]:
        async with open_pool(settings.database_url, max_size=1) as pool:
            new = await create_account(pool, name)
        return new.account_sid, new.auth_token

    sid, token = _run(go())
    if as_json:
        click.echo(json.dumps({"account_sid": sid, "auth_token": token}))
    else:
        click.echo(f"AccountSid: {sid}\nAuthToken:  {token}")


@accounts.command("set")
@click.option(
    "--enforce-media-auth/--no-enforce-media-auth",
    required=True,
    help="Whether fetching this account's media needs its credentials.",
)
@click.argument("account_sid")
@pass_settings
def accounts_set(settings: Settings, enforce_media_auth: bool, account_sid: str) -> None:
    """Change an account's settings."""
    from db.accounts import set_enforce_media_auth
    from db.pool import open_pool
    from service.sids import is_account_sid

    if not is_account_sid(account_sid):
        raise click.BadParameter("not an AccountSid", param_hint="ACCOUNT_SID")

    async def go() -> bool:
        async with open_pool(settings.database_url, max_size=1) as pool:
            return await set_enforce_media_auth(pool, account_sid, enforce_media_auth)

    if not _run(go()):
        raise click.ClickException(f"no account {account_sid}")
    state = "on" if enforce_media_auth else "off"
    click.echo(f"{account_sid}: enforce media auth {state}")


@main.command("import")
@click.option("--account", "account_sid", required=True, help="The AccountSid to import into.")
@click.option("--call-sid", default=None, help="The CallSid (a new one per file when omitted).")
@click.option("--date-created", default=None, help="ISO-8601 timestamp (default: now).")
@click.option("--json", "as_json", is_flag=True, help='Print [{"sid": ..., "file": ...}].')
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_settings
def import_(
    settings: Settings,
    account_sid: str,
    call_sid: str | None,
    date_created: str | None,
    as_json: bool,
    files: tuple[str, ...],
) -> None:
    """Turn audio files into recordings."""
    from db.accounts import fetch_account
    from service.audio.probe import AudioError
    from service.ingest.pipeline import Upload, ingest_file
    from service.services import open_services
    from service.sids import is_account_sid, is_call_sid, new_sid
    from service.timestamps import InvalidTimestamp, parse_timestamp

    if not is_account_sid(account_sid):
        raise click.BadParameter("not an AccountSid", param_hint="--account")
    if call_sid is not None and not is_call_sid(call_sid):
        raise click.BadParameter("not a CallSid", param_hint="--call-sid")
    try:
        created = parse_timestamp(date_created) if date_created else None
    except InvalidTimestamp as exc:
        raise click.BadParameter(str(exc), param_hint="--date-created") from exc

    async def go() -> tuple[list[dict[str, str]], int]:
        results: list[dict[str, str]] = []
        failures = 0
        async with open_services(settings) as services:
            if await fetch_account(services.pool, account_sid) is None:
                raise click.ClickException(f"no account {account_sid}")
            # click draws the bar only when stderr is a terminal.
            with click.progressbar(files, label="Importing", file=sys.stderr) as bar:
                for name in bar:
                    upload = Upload(account_sid, call_sid or new_sid("CA"), created)
                    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as tmp:
                        try:
                            recording = await ingest_file(services, upload, Path(name), Path(tmp))
                        except AudioError as exc:
                            failures += 1
                            click.echo(f"{name}: {exc.message}", err=True)
                            continue
                    results.append({"sid": recording.sid, "file": name})
        return results, failures

    results, failures = _run(go())
    if as_json:
        click.echo(json.dumps(results))
    else:
        for item in results:
            click.echo(f"{item['sid']}  {item['file']}")
    if failures:
        sys.exit(1)


@main.command()
@click.option("--grace", default=None, type=int, help="Seconds an unreferenced object is spared.")
@pass_settings
def gc(settings: Settings, grace: int | None) -> None:
    """Remove deleted recordings' objects, forget them after the soft-delete window, and remove
    stored objects no row references."""
    from datetime import timedelta

    from service.recordings.gc import collect_garbage
    from service.services import open_services

    async def go() -> str:
        async with open_services(settings) as services:
            report = await collect_garbage(
                services.pool,
                services.storage,
                grace=timedelta(seconds=settings.gc_grace_seconds if grace is None else grace),
                retention=timedelta(seconds=settings.deleted_retention_seconds),
                soft_delete_retention=timedelta(days=settings.soft_delete_retention_days),
            )
        return (
            f"purged {report.purged_recordings} deleted recordings' objects, "
            f"forgot {report.forgotten_recordings} past the soft-delete window, "
            f"removed {report.orphans_removed} orphaned objects of {report.objects_scanned}, "
            f"aborted {report.uploads_aborted} unfinished uploads"
        )

    click.echo(_run(go()))


def _add_dev_command() -> None:
    # The embedded dev stack lives beside the package in a source checkout and is absent from
    # the wheel and the image; where it is missing, so is `recordings dev`.
    if importlib.util.find_spec("devstack") is None:
        return
    from devstack.cli import dev

    main.add_command(dev)


_add_dev_command()
