"""``recordings``: the operator's whole interface to the service."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import click

from db.accounts import fetch_account, set_enforce_media_auth
from db.migrations import apply_migrations
from db.pool import open_pool
from service.accounts import create_account
from service.audio import AudioError
from service.gc import collect_garbage
from service.ingest import ingest_file, parse_timestamp
from service.logs import configure_logging, logging_config
from service.queue import install_queue
from service.server import http_protocol
from service.settings import Settings
from service.sids import is_account_sid, is_call_sid, new_sid
from service.state import open_services, storage_config
from storage.client import open_storage

T = TypeVar("T")


def _run(factory: Callable[[Settings], Awaitable[T]]) -> T:
    settings = Settings()
    return asyncio.run(factory(settings))  # type: ignore[arg-type]


@click.group()
def main() -> None:
    """Twilio-compatible Recordings service (API 2008-08-01)."""
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    settings = Settings()
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


async def migrate_all(settings: Settings) -> list[str]:
    """Apply the database migrations and create the bucket; safe to run from many replicas."""
    applied = await apply_migrations(settings.database_url)
    queue_created = await install_queue(settings.database_url)
    async with open_storage(storage_config(settings)) as storage:
        created = await storage.ensure_bucket()
    done = [f"migration {m.version:04d}_{m.name}" for m in applied]
    if queue_created:
        done.append("job queue tables")
    if created:
        done.append(f"bucket {settings.s3_bucket}")
    return done


@main.command()
def worker() -> None:
    """Make MP3s from the job queue, RECORDINGS_FFMPEG_MAX_PROCESSES ffmpeg runs at a time."""
    from service.jobs import run_worker

    _run(run_worker)


@main.command()
def migrate() -> None:
    """Apply database migrations and create the storage bucket when it is missing."""
    done = _run(migrate_all)
    click.echo("\n".join(f"applied {d}" for d in done) or "up to date")


@main.group()
def accounts() -> None:
    """Manage accounts."""


@accounts.command("create")
@click.option("--name", default="", help="A friendly name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def accounts_create(name: str, as_json: bool) -> None:
    """Create an account and print its AccountSid and AuthToken (shown only now)."""

    async def go(settings: Settings) -> tuple[str, str]:
        async with open_pool(settings.database_url, max_size=1) as pool:
            new = await create_account(pool, name)
        return new.account_sid, new.auth_token

    sid, token = _run(go)
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
def accounts_set(enforce_media_auth: bool, account_sid: str) -> None:
    """Change an account's settings."""
    if not is_account_sid(account_sid):
        raise click.BadParameter("not an AccountSid", param_hint="ACCOUNT_SID")

    async def go(settings: Settings) -> bool:
        async with open_pool(settings.database_url, max_size=1) as pool:
            return await set_enforce_media_auth(pool, account_sid, enforce_media_auth)

    if not _run(go):
        raise click.ClickException(f"no account {account_sid}")
    state = "on" if enforce_media_auth else "off"
    click.echo(f"{account_sid}: enforce media auth {state}")


@main.command("import")
@click.option("--account", "account_sid", required=True, help="The AccountSid to import into.")
@click.option("--call-sid", default=None, help="The CallSid (a new one per file when omitted).")
@click.option("--date-created", default=None, help="ISO-8601 timestamp (default: now).")
@click.option("--json", "as_json", is_flag=True, help='Print [{"sid": ..., "file": ...}].')
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
def import_(
    account_sid: str,
    call_sid: str | None,
    date_created: str | None,
    as_json: bool,
    files: tuple[str, ...],
) -> None:
    """Turn audio files into recordings."""
    if not is_account_sid(account_sid):
        raise click.BadParameter("not an AccountSid", param_hint="--account")
    if call_sid is not None and not is_call_sid(call_sid):
        raise click.BadParameter("not a CallSid", param_hint="--call-sid")
    try:
        created = parse_timestamp(date_created) if date_created else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--date-created") from exc

    async def go(settings: Settings) -> tuple[list[dict[str, str]], int]:
        results: list[dict[str, str]] = []
        failures = 0
        async with open_services(settings) as services:
            if await fetch_account(services.pool, account_sid) is None:
                raise click.ClickException(f"no account {account_sid}")
            # click draws the bar only when stderr is a terminal.
            with click.progressbar(files, label="Importing", file=sys.stderr) as bar:
                for name in bar:
                    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as tmp:
                        try:
                            recording = await ingest_file(
                                services.pool,
                                services.storage,
                                source=Path(name),
                                workdir=Path(tmp),
                                account_sid=account_sid,
                                call_sid=call_sid or new_sid("CA"),
                                date_created=created,
                                ffmpeg=settings.ffmpeg_path,
                                ffmpeg_timeout=settings.ffmpeg_timeout,
                                enqueue_mp3=settings.transcode_on_ingest,
                            )
                        except AudioError as exc:
                            failures += 1
                            click.echo(f"{name}: {exc.message}", err=True)
                            continue
                    results.append({"sid": recording.sid, "file": name})
        return results, failures

    results, failures = _run(go)
    if as_json:
        click.echo(json.dumps(results))
    else:
        for item in results:
            click.echo(f"{item['sid']}  {item['file']}")
    if failures:
        sys.exit(1)


@main.command()
@click.option("--grace", default=None, type=int, help="Seconds an unreferenced object is spared.")
def gc(grace: int | None) -> None:
    """Remove stored objects no row references, and purge deleted recordings."""

    async def go(settings: Settings) -> str:
        async with open_services(settings) as services:
            report = await collect_garbage(
                services.pool,
                services.storage,
                grace=timedelta(seconds=settings.gc_grace_seconds if grace is None else grace),
                retention=timedelta(seconds=settings.deleted_retention_seconds),
            )
        return (
            f"purged {report.purged_recordings} deleted recordings, "
            f"removed {report.orphans_removed} orphaned objects of {report.objects_scanned}, "
            f"aborted {report.uploads_aborted} unfinished uploads"
        )

    click.echo(_run(go))


@main.command()
@click.option("--data-dir", default="./recordings-dev", show_default=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def dev(data_dir: str, host: str, port: int) -> None:
    """Run everything on this machine: PostgreSQL, S3, demo data and the API."""
    from service.dev import run_dev

    run_dev(Path(data_dir), host=host, port=port)
