"""The `recordings dev` command, registered by the CLI when this package is importable."""

from __future__ import annotations

from pathlib import Path

import click

from service.settings import Settings


@click.command()
@click.option("--data-dir", default="./recordings-dev", show_default=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.pass_obj
def dev(settings: Settings, data_dir: str, host: str, port: int) -> None:
    """Run everything on this machine: PostgreSQL, S3, demo data and the API."""
    from devstack.dev import run_dev

    # Text logs for a person at a terminal, unless RECORDINGS_LOG_FORMAT says otherwise.
    log_format = settings.log_format if "log_format" in settings.model_fields_set else "text"
    run_dev(Path(data_dir), host=host, port=port, log_format=log_format)
