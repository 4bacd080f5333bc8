"""``recordings``: the operator's whole interface to the service.

Commands import what they need when they run, so ``--help`` and the quick commands do not pay
for the web framework, ffmpeg's wrappers or the S3 client.
"""

from __future__ import annotations

import importlib.util

import click

from service.cli import accounts, callbacks, imports, keys, processes, recordings
from service.cli.base import Commands
from service.settings import Settings


@click.group(cls=Commands)
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


for command in (
    processes.serve,
    processes.worker,
    processes.migrate,
    accounts.accounts,
    keys.keys,
    callbacks.callbacks,
    recordings.import_,
    imports.import_twilio,
    recordings.gc,
    recordings.retention,
):
    main.add_command(command)


def _add_dev_command() -> None:
    # The embedded dev stack lives beside the package in a source checkout and is absent from
    # the wheel and the image; where it is missing, so is `recordings dev`.
    if importlib.util.find_spec("devstack") is None:
        return
    from devstack.cli import dev

    main.add_command(dev)


_add_dev_command()
