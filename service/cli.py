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

from service.operator_errors import NOT_FOUND, OperatorError, describe
from service.settings import Settings

T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


class _Commands(click.Group):
    """Expected failures end as one line on stderr and their exit code; ``--debug`` shows more."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            settings = ctx.obj if isinstance(ctx.obj, Settings) else None
            failure = describe(exc, settings)
            if failure is None or ctx.params.get("debug"):
                raise
            click.echo(f"recordings: {failure.message}", err=True)
            ctx.exit(failure.exit_code)


@click.group(cls=_Commands)
@click.option("--debug", is_flag=True, help="Show tracebacks of failures.")
@click.version_option(package_name="recordings", prog_name="recordings")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Twilio-compatible Recordings service (APIs 2008-08-01 and 2010-04-01)."""
    from pydantic import ValidationError

    from service.logs import configure_logging

    try:
        settings = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = "RECORDINGS_" + "_".join(str(part) for part in first["loc"]).upper()
        raise click.UsageError(f"{name}: {first['msg']}") from exc
    configure_logging(settings.log_format, settings.log_level)
    ctx.obj = settings


pass_settings = click.make_pass_decorator(Settings)


def _account_sid(value: str) -> str:
    from service.sids import is_account_sid

    if not is_account_sid(value):
        raise click.BadParameter(f"{value!r} is not an AccountSid (AC + 32 hex digits)")
    return value


def _no_account(account_sid: str) -> OperatorError:
    return OperatorError(f"no account {account_sid}", NOT_FOUND)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="uvicorn worker processes sharing the port; every per-process limit applies to each.",
)
@pass_settings
def serve(settings: Settings, host: str, port: int, workers: int) -> None:
    """Serve the API with uvicorn."""
    import uvicorn

    from service.http.server import server_options
    from service.logs import logging_config

    options = server_options(settings)
    if workers > 1:
        # Spawned workers get the protocol by name (see service.http.server.__getattr__).
        options["http"] = "service.http.server:SettingsProtocol"
    # The factory reads the settings again in the server process (uvicorn may spawn workers).
    uvicorn.run(
        "service.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        **options,
        timeout_graceful_shutdown=30,
        access_log=False,
        log_config=logging_config(settings.log_format, settings.log_level),
    )


@main.command()
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve the worker's /metrics on this port (RECORDINGS_WORKER_METRICS_PORT).",
)
@pass_settings
def worker(settings: Settings, metrics_port: int | None) -> None:
    """Make MP3s from the job queue, RECORDINGS_FFMPEG_MAX_PROCESSES ffmpeg runs at a time."""
    from service.mp3.worker import run_worker

    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
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
    from service.accounts.sealing import sealer_for

    async def go() -> tuple[str, str]:
        async with open_pool(settings.database_url, max_size=1) as pool:
            new = await create_account(pool, name, sealer=sealer_for(settings.secret_key))
        return new.account_sid, new.auth_token

    sid, token = _run(go())
    if as_json:
        click.echo(json.dumps({"account_sid": sid, "auth_token": token}))
    else:
        click.echo(f"AccountSid: {sid}\nAuthToken:  {token}")


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
    account_sid: str,
) -> None:
    """Change an account's settings (any of the options, at least one)."""
    from service.accounts.changes import AccountChanges, change_account, parse_origin
    from service.callbacks.guard import UrlRefused
    from service.sids import is_account_sid

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
    if (
        enforce_media_auth is None
        and status_callback is None
        and status_callback_method is None
        and new_origins is None
        and new_retention is None
    ):
        raise click.UsageError(
            "nothing to change: give --enforce-media-auth/--no-enforce-media-auth,"
            " --status-callback, --status-callback-method, --cors-origin, --no-cors-origins,"
            " --retention-days or --no-retention"
        )
    changes = AccountChanges(
        enforce_media_auth=enforce_media_auth,
        status_callback=status_callback,
        status_callback_method=status_callback_method.upper() if status_callback_method else None,
        cors_origins=new_origins,
        retention_days=new_retention,
    )
    try:
        account = _run(change_account(settings, account_sid, changes))
    except UrlRefused as exc:
        raise click.BadParameter(str(exc), param_hint="--status-callback") from exc
    if account is None:
        raise _no_account(account_sid)
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
    from db.pool import open_pool
    from service.http.representations import rfc2822

    async def go() -> list[dict[str, Any]]:
        async with open_pool(settings.database_url, max_size=1) as pool:
            found = await list_accounts(pool)
        return [
            {
                "account_sid": account.sid,
                "friendly_name": account.friendly_name,
                "enforce_media_auth": account.enforce_media_auth,
                "cors_origins": list(account.cors_origins),
                "retention_days": account.retention_days,
                "recordings": live,
                "date_created": rfc2822(account.date_created),
                "status_callback": account.status_callback,
                "status_callback_method": account.status_callback_method,
                # Whether its callbacks can be signed (a sealed copy of its token exists).
                "token_sealed": account.token_sealed is not None,
            }
            for account, live in found
        ]

    listed = _run(go())
    if as_json:
        click.echo(json.dumps(listed))
        return
    for item in listed:
        auth = "  media auth" if item["enforce_media_auth"] else ""
        if item["status_callback"]:
            auth += f"  callback {item['status_callback_method']} {item['status_callback']}"
        name = f"  {item['friendly_name']}" if item["friendly_name"] else ""
        click.echo(f"{item['account_sid']}  {item['recordings']:>9} recordings{auth}{name}")


@accounts.command("rotate-token")
@click.argument("account_sid", callback=lambda _c, _p, v: _account_sid(v))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def accounts_rotate_token(settings: Settings, account_sid: str, as_json: bool) -> None:
    """Give the account a new AuthToken, printed only now; the old one stops working."""
    from db.pool import open_pool
    from service.accounts.registry import rotate_token
    from service.accounts.sealing import sealer_for

    async def go() -> str | None:
        async with open_pool(settings.database_url, max_size=1) as pool:
            return await rotate_token(pool, account_sid, sealer=sealer_for(settings.secret_key))

    token = _run(go())
    if token is None:
        raise _no_account(account_sid)
    if as_json:
        click.echo(json.dumps({"account_sid": account_sid, "auth_token": token}))
    else:
        click.echo(f"AccountSid: {account_sid}\nAuthToken:  {token}")


@accounts.command("delete")
@click.argument("account_sid", callback=lambda _c, _p, v: _account_sid(v))
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

    deleted = _run(go())
    if deleted is None:
        raise _no_account(account_sid)
    click.echo(f"deleted {account_sid} and {deleted} recordings")


@main.group()
def callbacks() -> None:
    """Recording status callbacks: see them, deliver failed ones again."""


@callbacks.command("list")
@click.option("--failed", is_flag=True, help="Only callbacks that were given up on.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_settings
def callbacks_list(settings: Settings, failed: bool, limit: int, as_json: bool) -> None:
    """The newest callbacks, newest first."""
    from db.callbacks import list_callbacks
    from db.pool import open_pool

    async def go() -> list[dict[str, Any]]:
        async with open_pool(settings.database_url, max_size=1) as pool:
            found = await list_callbacks(pool, failed_only=failed, limit=limit)
        return [
            {
                "id": c.id,
                "status": c.status,
                "account_sid": c.account_sid,
                "recording_sid": c.recording_sid,
                "method": c.method,
                "url": c.url,
                "attempts": c.attempts,
                "last_status": c.last_status,
                "last_error": c.last_error,
                "request_id": c.request_id,
                "date_created": c.date_created.isoformat(),
                "next_attempt_at": c.next_attempt_at.isoformat() if c.status == "pending" else None,
                "delivered_at": c.delivered_at.isoformat() if c.delivered_at else None,
            }
            for c in found
        ]

    listed = _run(go())
    if as_json:
        click.echo(json.dumps(listed))
        return
    for item in listed:
        error = (
            f"  {item['last_error']}"
            if item["status"] != "delivered" and item["last_error"]
            else ""
        )
        click.echo(
            f"{item['id']:>8}  {item['status']:<9}  {item['attempts']:>3} tries  "
            f"{item['recording_sid']}  {item['method']} {item['url']}{error}"
        )


@callbacks.command("retry")
@click.argument("ids", nargs=-1, required=True, type=click.IntRange(1))
@pass_settings
def callbacks_retry(settings: Settings, ids: tuple[int, ...]) -> None:
    """Deliver these callbacks again now, with a new retry window (failed or pending ones)."""
    from db.callbacks import fetch_callbacks, requeue
    from db.pool import open_pool

    async def go() -> tuple[list[int], dict[int, str]]:
        async with open_pool(settings.database_url, max_size=1) as pool:
            done = await requeue(
                pool, sorted(set(ids)), window_seconds=settings.callback_retry_window_seconds
            )
            known = {c.id: c.status for c in await fetch_callbacks(pool, sorted(set(ids)))}
        return done, known

    done, known = _run(go())
    for callback_id in done:
        click.echo(f"{callback_id}: queued for delivery")
    missing = [i for i in sorted(set(ids)) if i not in known]
    left = [i for i in sorted(set(ids)) if i in known and i not in done]
    for callback_id in left:
        state = known[callback_id]
        why = "already delivered" if state == "delivered" else "being delivered right now"
        click.echo(f"recordings: callback {callback_id} is {why}", err=True)
    if missing:
        raise OperatorError(f"no callback {', '.join(map(str, missing))}", NOT_FOUND)
    if left:
        sys.exit(1)


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
                raise _no_account(account_sid)
            # In bytes, so one long recording among short ones weighs what it takes; click
            # draws the bar only when stderr is a terminal.
            sizes = {name: Path(name).stat().st_size for name in files}
            with click.progressbar(
                length=sum(sizes.values()), label="Importing", file=sys.stderr
            ) as bar:
                for name in files:
                    upload = Upload(account_sid, call_sid or new_sid("CA"), created)
                    with tempfile.TemporaryDirectory(dir=settings.tmp_dir) as tmp:
                        try:
                            recording = await ingest_file(services, upload, Path(name), Path(tmp))
                        except AudioError as exc:
                            failures += 1
                            click.echo(f"{name}: {exc.message}", err=True)
                            continue
                        finally:
                            bar.update(sizes[name])
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
            f"aborted {report.uploads_aborted} unfinished uploads, "
            f"forgot {report.keys_forgotten} idempotency keys past their day"
        )

    click.echo(_run(go()))


@main.command()
@click.option(
    "--account",
    "account_sids",
    metavar="ACCOUNT_SID",
    multiple=True,
    callback=lambda _c, _p, v: tuple(_account_sid(s) for s in v),
    help="Only this account (repeat for several).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, with counts per account.")
@pass_settings
def retention(settings: Settings, account_sids: tuple[str, ...], as_json: bool) -> None:
    """Run one retention pass now: delete, as DELETE does, the recordings older than their
    account's policy (--retention-days, else RECORDINGS_RETENTION_DAYS)."""
    from service.recordings.retention import RetentionReport, retention_for
    from service.services import open_services

    async def go() -> RetentionReport:
        async with open_services(settings) as services:
            return await retention_for(services).run_pass(accounts=list(account_sids) or None)

    report = _run(go())
    if as_json:
        click.echo(json.dumps(report.as_json()))
        return
    for account in report.accounts:
        source = "its own" if account.own else "default"
        click.echo(
            f"{account.account_sid}  {account.deleted:>9} deleted"
            f"  (older than {account.days} days, {source})"
        )
    click.echo(
        f"deleted {report.deleted} recordings of {len(report.accounts)} accounts with a policy"
        f" in {report.seconds:.1f} s; removed the objects of {report.leftovers_purged}"
        " earlier deletes"
    )


def _add_dev_command() -> None:
    # The embedded dev stack lives beside the package in a source checkout and is absent from
    # the wheel and the image; where it is missing, so is `recordings dev`.
    if importlib.util.find_spec("devstack") is None:
        return
    from devstack.cli import dev

    main.add_command(dev)


_add_dev_command()
