"""What every `recordings` command shares: the settings, the one error path, small helpers."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import click

from service.operator_errors import NOT_FOUND, OperatorError, describe
from service.settings import Settings

T = TypeVar("T")
pass_settings = click.make_pass_decorator(Settings)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's async work to its end."""
    return asyncio.run(coroutine)


class Commands(click.Group):
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


def account_sid_param(value: str) -> str:
    """An AccountSid argument, checked before anything connects anywhere."""
    from service.sids import is_account_sid

    if not is_account_sid(value):
        raise click.BadParameter(f"{value!r} is not an AccountSid (AC + 32 hex digits)")
    return value


def no_account(account_sid: str) -> OperatorError:
    return OperatorError(f"no account {account_sid}", NOT_FOUND)
