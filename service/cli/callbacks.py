"""`recordings callbacks ...`: status callbacks listed and delivered again."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from service.cli.base import pass_settings, run
from service.operator_errors import NOT_FOUND, OperatorError
from service.settings import Settings


@click.group()
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
    from service.database import open_database

    async def go() -> list[dict[str, Any]]:
        async with open_database(settings, max_size=1) as pool:
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

    listed = run(go())
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
    from service.database import open_database

    async def go() -> tuple[list[int], dict[int, str]]:
        async with open_database(settings, max_size=1) as pool:
            done = await requeue(
                pool, sorted(set(ids)), window_seconds=settings.callback_retry_window_seconds
            )
            known = {c.id: c.status for c in await fetch_callbacks(pool, sorted(set(ids)))}
        return done, known

    done, known = run(go())
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
