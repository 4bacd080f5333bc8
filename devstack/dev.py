"""``recordings dev``: PostgreSQL and S3 from pip wheels, demo data, and the API, on one machine."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import tempfile
from pathlib import Path
from typing import Any

import click
import uvicorn

from db.accounts import fetch_account
from db.recordings import ListFilter, list_recordings
from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.accounts.registry import create_account
from service.app import create_app
from service.http.server import http_protocol
from service.ingest.pipeline import Upload, ingest_file
from service.logs import configure_logging, logging_config
from service.migrate import migrate_all
from service.mp3.worker import consume
from service.services import open_services
from service.settings import Settings, settings_env
from service.sids import new_sid

DEMO_SECONDS = (4.0, 9.0, 17.0)


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read: it holds the stack's secrets."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(text)


def _port_free(port: int | None) -> bool:
    if not port:
        return False
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _load_state(path: Path) -> dict[str, Any]:
    if path.exists():
        state: dict[str, Any] = json.loads(path.read_text())
        return state
    return {
        "s3_access_key": "dev" + secrets.token_hex(8),
        "s3_secret_key": secrets.token_hex(20),
        "ingest_token": secrets.token_hex(20),
    }


def stack_settings(postgres: EmbeddedPostgres, s3: EmbeddedS3, **overrides: Any) -> Settings:
    """Settings that point at these embedded servers (the dev stack, the tests, the benches)."""
    values: dict[str, Any] = {
        "database_url": postgres.dsn,
        "s3_endpoint_url": s3.endpoint_url,
        "s3_bucket": "recordings",
        "s3_access_key_id": s3.access_key,
        "s3_secret_access_key": s3.secret_key,
        "s3_region": "us-east-1",
    }
    values.update(overrides)
    settings = Settings(**values)
    # Resolved once here, so that every process pointed at this stack runs the same ffmpeg.
    return settings.model_copy(update={"ffmpeg": settings.ffmpeg_path})


async def _seed(settings: Settings, state: dict[str, Any]) -> None:
    """The demo account, made once and kept between runs, with a few live recordings."""
    async with open_services(settings) as services:
        known = state.get("account_sid")
        if not (known and await fetch_account(services.pool, known)):
            account = await create_account(services.pool, "Demo account")
            state["account_sid"], state["auth_token"] = account.account_sid, account.auth_token
        live = await list_recordings(
            services.pool, state["account_sid"], ListFilter(), limit=3, offset=0
        )
        if not live:
            upload = Upload(state["account_sid"], new_sid("CA"))
            with tempfile.TemporaryDirectory() as tmp:
                for i, seconds in enumerate(DEMO_SECONDS):
                    source = write_demo_wav(Path(tmp) / f"demo{i}.wav", seconds, seed=i)
                    live.append(await ingest_file(services, upload, source, Path(tmp)))
        # The banner's examples use a recording that exists now (an earlier run's may be deleted).
        state["recording_sids"] = [r.sid for r in live]


async def _serve_with_worker(server: uvicorn.Server, settings: Settings, ready: str) -> None:
    """The API and an MP3 worker in one process, stopping together on Ctrl-C."""
    stop = asyncio.Event()
    async with open_services(settings) as services:
        worker = asyncio.create_task(consume(services, stop, concurrency=1))
        serving = asyncio.create_task(server.serve())
        try:
            # uvicorn offers a flag, not an event, for "listening".
            while not server.started and not serving.done():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if server.started:
                # Only now: the curl lines work the moment they appear.
                click.echo(ready)
            await serving
        finally:
            stop.set()
            await asyncio.wait_for(worker, timeout=10)


def banner(base: str, state: dict[str, Any], data_dir: Path) -> str:
    account, token = state["account_sid"], state["auth_token"]
    sid = state["recording_sids"][0] if state.get("recording_sids") else "RE..."
    rec = f"{base}/2008-08-01/Accounts/{account}/Recordings"
    env = data_dir / "dev.env"
    upload = f"{base}/internal/Accounts/{account}/Recordings.json?CallSid={new_sid('CA')}"
    return f"""
Recordings is running at {base}

  AccountSid:   {account}
  AuthToken:    {token}
  Ingest token: {state["ingest_token"]}
  Settings:     {env}   (set -a; . {env}; set +a; recordings accounts create)

Try:
  curl -u {account}:{token} {rec}
  curl -u {account}:{token} '{rec}.json?num=2'
  curl {rec}/{sid}.xml
  curl -o {sid}.wav {rec}/{sid}
  curl -H 'Range: bytes=0-99' -o /dev/null -D - {rec}/{sid}.wav
  curl -X POST -H 'Authorization: Bearer {state["ingest_token"]}' \\
       --data-binary @{sid}.wav '{upload}'
  curl -u {account}:{token} -X DELETE {rec}/{sid}

The 2010-04-01 API, through the official libraries with only their base URL changed:
  curl -u {account}:{token} {base}/2010-04-01/Accounts/{account}/Recordings.json
  python: c = twilio.rest.Client("{account}", "{token}", environment={{}})
          c.api.base_url = "{base}"; print([r.sid for r in c.recordings.list(limit=5)])
  node:   const c = require("twilio")("{account}", "{token}"); c.api.baseUrl = "{base}";

Press Ctrl-C to stop.
"""


def run_dev(data_dir: Path, *, host: str, port: int) -> None:
    """Start everything, serve until interrupted, then stop every child started here."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    state_path = data_dir / "dev-state.json"
    state = _load_state(state_path)
    pg_port = state.get("pg_port") if _port_free(state.get("pg_port")) else None
    s3_port = state.get("s3_port") if _port_free(state.get("s3_port")) else None
    postgres = EmbeddedPostgres(data_dir / "postgres", port=pg_port)
    s3 = EmbeddedS3(
        data_dir / "s3",
        port=s3_port,
        access_key=state["s3_access_key"],
        secret_key=state["s3_secret_key"],
    )
    try:
        click.echo("starting PostgreSQL and S3 ...", err=True)
        postgres.start()
        s3.start()
        state["pg_port"], state["s3_port"] = postgres.port, s3.port
        settings = stack_settings(
            postgres, s3, ingest_token=state["ingest_token"], log_format="text"
        )
        configure_logging("text")
        _write_private(
            data_dir / "dev.env", "".join(f"{k}={v}\n" for k, v in settings_env(settings).items())
        )
        asyncio.run(migrate_all(settings))
        asyncio.run(_seed(settings, state))
        _write_private(state_path, json.dumps(state, indent=2))
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            loop="uvloop",
            http=http_protocol(settings.max_header_bytes),
            timeout_graceful_shutdown=5,
            log_config=logging_config("text"),
        )
        ready = banner(f"http://{host}:{port}", state, data_dir)
        asyncio.run(_serve_with_worker(uvicorn.Server(config), settings, ready))
    finally:
        click.echo("stopping PostgreSQL and S3 ...", err=True)
        s3.stop()
        postgres.stop()
