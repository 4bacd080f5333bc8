"""`recordings import`, `gc` and `retention`: recordings in bulk."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from service.cli.base import account_sid_param, no_account, pass_settings, run
from service.settings import Settings


@click.command("import")
@click.option("--account", "account_sid", required=True, help="The AccountSid to import into.")
@click.option("--call-sid", default=None, help="The CallSid (a new one per file when omitted).")
@click.option("--date-created", default=None, help="ISO-8601 timestamp (default: now).")
@click.option(
    "--source",
    default=None,
    help="How the recordings were made, as the 2010 API names it (default: RecordVerb).",
)
@click.option(
    "--start-time", default=None, help="ISO-8601 timestamp the recording began (default: none)."
)
@click.option("--conference-sid", default=None, help="The ConferenceSid they belong to.")
@click.option("--json", "as_json", is_flag=True, help='Print [{"sid": ..., "file": ...}].')
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@pass_settings
def import_(
    settings: Settings,
    account_sid: str,
    call_sid: str | None,
    date_created: str | None,
    source: str | None,
    start_time: str | None,
    conference_sid: str | None,
    as_json: bool,
    files: tuple[str, ...],
) -> None:
    """Turn audio files into recordings."""
    from db.accounts import fetch_account
    from service.audio.probe import AudioError
    from service.ingest.pipeline import DEFAULT_SOURCE, SOURCES, Upload, ingest_file
    from service.services import open_services
    from service.sids import is_account_sid, is_call_sid, is_conference_sid, new_sid
    from service.timestamps import InvalidTimestamp, parse_timestamp

    if not is_account_sid(account_sid):
        raise click.BadParameter("not an AccountSid", param_hint="--account")
    if call_sid is not None and not is_call_sid(call_sid):
        raise click.BadParameter("not a CallSid", param_hint="--call-sid")
    if source is not None and source not in SOURCES:
        raise click.BadParameter(f"one of {', '.join(SOURCES)}", param_hint="--source")
    if conference_sid is not None and not is_conference_sid(conference_sid):
        raise click.BadParameter("not a ConferenceSid", param_hint="--conference-sid")
    times = {}
    for hint, value in (("--date-created", date_created), ("--start-time", start_time)):
        try:
            times[hint] = parse_timestamp(value) if value else None
        except InvalidTimestamp as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from exc

    async def go() -> tuple[list[dict[str, str]], int]:
        results: list[dict[str, str]] = []
        failures = 0
        async with open_services(settings) as services:
            if await fetch_account(services.pool, account_sid) is None:
                raise no_account(account_sid)
            # In bytes, so one long recording among short ones weighs what it takes; click
            # draws the bar only when stderr is a terminal.
            sizes = {name: Path(name).stat().st_size for name in files}
            with click.progressbar(
                length=sum(sizes.values()), label="Importing", file=sys.stderr
            ) as bar:
                for name in files:
                    upload = Upload(
                        account_sid,
                        call_sid or new_sid("CA"),
                        times["--date-created"],
                        source=source or DEFAULT_SOURCE,
                        start_time=times["--start-time"],
                        conference_sid=conference_sid,
                    )
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

    results, failures = run(go())
    if as_json:
        click.echo(json.dumps(results))
    else:
        for item in results:
            click.echo(f"{item['sid']}  {item['file']}")
    if failures:
        sys.exit(1)


@click.command()
@click.option("--grace", default=None, type=int, help="Seconds an unreferenced object is spared.")
@pass_settings
def gc(settings: Settings, grace: int | None) -> None:
    """Remove deleted recordings' objects, forget them after the soft-delete window, remove
    stored objects no row references, and forget settled status callbacks past their history."""
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
                callback_history=timedelta(days=settings.callback_history_days),
            )
        return (
            f"purged {report.purged_recordings} deleted recordings' objects, "
            f"forgot {report.forgotten_recordings} past the soft-delete window, "
            f"removed {report.orphans_removed} orphaned objects of {report.objects_scanned}, "
            f"aborted {report.uploads_aborted} unfinished uploads, "
            f"forgot {report.keys_forgotten} idempotency keys past their day, "
            f"forgot {report.callbacks_forgotten} settled status callbacks past"
            f" {settings.callback_history_days} days"
        )

    click.echo(run(go()))


@click.command()
@click.option(
    "--account",
    "account_sids",
    metavar="ACCOUNT_SID",
    multiple=True,
    callback=lambda _c, _p, v: tuple(account_sid_param(s) for s in v),
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
            retention = retention_for(
                services.pool, services.storage, services.metrics, services.settings
            )
            return await retention.run_pass(accounts=list(account_sids) or None)

    report = run(go())
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
