"""`recordings serve`, `worker` and `migrate`: the service's long-running processes and setup."""

from __future__ import annotations

import click

from service.cli.base import pass_settings, run
from service.settings import Settings


@click.command()
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
        "service.app:create_served_app",
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


@click.command()
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Serve the worker's /metrics on this port (RECORDINGS_WORKER_METRICS_PORT).",
)
@pass_settings
def worker(settings: Settings, metrics_port: int | None) -> None:
    """Make MP3s and peaks, deliver status callbacks and run the scheduled retention passes.

    MP3s and peaks come from the job queue, RECORDINGS_FFMPEG_MAX_PROCESSES ffmpeg runs at a
    time; callbacks go out RECORDINGS_CALLBACK_CONCURRENCY at a time.
    """
    from service.worker import run_worker

    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    run(run_worker(settings))


@click.command()
@pass_settings
def migrate(settings: Settings) -> None:
    """Apply database migrations and create the storage bucket when it is missing."""
    from service.migrate import migrate_all

    done = run(migrate_all(settings))
    click.echo("\n".join(f"applied {d}" for d in done) or "up to date")
