"""settings_env: the environment that gives another process (`recordings serve`, the worker, a
replica) exactly these settings."""

from __future__ import annotations

import pytest
from pydantic_core import PydanticUndefined

from service.settings import Settings, settings_env

NON_DEFAULTS: dict[str, object] = {
    "database_url": "postgresql://u:p%40ss@127.0.0.1:6543/other",
    "database_direct_url": "postgresql://u:p%40ss@127.0.0.1:5432/other",
    "database_pool_size": 3,
    "database_timeout": 2.5,
    "s3_endpoint_url": "http://127.0.0.1:9333",
    "s3_bucket": "other-bucket",
    "s3_access_key_id": "key id",
    "s3_secret_access_key": "s3cr=t with spaces",
    "s3_region": "eu-west-3",
    "s3_key_prefix": "tenant-7/",
    "s3_max_connections": 7,
    "s3_timeout": 0.25,
    "ingest_token": "ingest-token",
    "max_upload_bytes": 12345,
    "ingest_max_streamed": 3,
    "max_header_bytes": 8192,
    "tmp_dir": "/var/tmp/recordings",
    "ffmpeg": "/opt/ffmpeg/bin/ffmpeg",
    "ffmpeg_timeout": 12.5,
    "ffmpeg_max_processes": 5,
    "ffmpeg_max_waiting": 0,
    "transcode_on_ingest": False,
    "media_delivery": "redirect",
    "presign_endpoint_url": "https://media.example",
    "presign_expires": 60,
    "gc_grace_seconds": 0,
    "deleted_retention_seconds": 86400,
    "log_format": "text",
    "log_level": "DEBUG",
    "access_log": False,
    "stream_chunk_bytes": 8192,
    "stream_splice": True,
    "s3_pool_timeout": 0.5,
    "head_timeout_seconds": 3.5,
    "body_idle_timeout_seconds": 4.5,
    "keep_alive_seconds": 1.5,
    "stream_send_timeout_seconds": 9.0,
    "stream_release_after_seconds": 0.75,
    "max_streams_per_client": 3,
    "max_stalled_streams_per_client": 2,
    "worker_metrics_port": 9109,
    "worker_metrics_host": "127.0.0.1",
    "metrics_token": "scrape token",
    "public_url": "https://media.example.com/calls",
    "soft_delete_retention_days": 7,
    "retention_days": 90,
    "retention_interval_seconds": 600.0,
    "retention_batch_size": 50,
    "retention_pause_ratio": 0.25,
    "max_duration_seconds": 600,
    "secret_key": "a server key of at least thirty-two characters",
    "webhook_allow_private": True,
    "callback_concurrency": 3,
    "callback_connect_timeout": 1.5,
    "callback_timeout": 4.5,
    "callback_retry_initial_seconds": 0.25,
    "callback_retry_max_seconds": 60.0,
    "callback_retry_window_seconds": 3600.0,
    "callback_host_concurrency": 3,
    "callback_account_concurrency": 6,
    "callback_host_cooldown_max_seconds": 60.0,
    "callback_history_days": 3,
}


def from_environment(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a process started with ``env`` reads (no .env file, nothing else set)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(f"RECORDINGS_{name.upper()}", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_the_variables_carry_the_settings_prefix() -> None:
    assert Settings.model_config["env_prefix"] == "RECORDINGS_"
    env = settings_env(Settings(**NON_DEFAULTS))  # type: ignore[arg-type]
    assert set(env) == {f"RECORDINGS_{name.upper()}" for name in Settings.model_fields}
    assert env["RECORDINGS_TRANSCODE_ON_INGEST"] == "false"
    assert env["RECORDINGS_ACCESS_LOG"] == "false"


def test_the_non_defaults_cover_every_setting() -> None:
    # A new setting must be added above, so that its round trip is tested too.
    assert set(NON_DEFAULTS) == set(Settings.model_fields)
    for name, field in Settings.model_fields.items():
        assert field.default is not PydanticUndefined, name
        assert NON_DEFAULTS[name] != field.default, name


def test_defaults_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = from_environment({}, monkeypatch)
    env = settings_env(defaults)
    # Unset settings (None) are left out rather than passed as a string.
    assert "RECORDINGS_S3_ENDPOINT_URL" not in env and "RECORDINGS_FFMPEG" not in env
    again = from_environment(env, monkeypatch)
    assert again == defaults
    assert again.model_dump() == defaults.model_dump()


def test_non_defaults_round_trip(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = Settings(_env_file=None, **NON_DEFAULTS)  # type: ignore[arg-type]
    again = from_environment(settings_env(chosen), monkeypatch)
    assert again == chosen
    assert again.model_dump() == NON_DEFAULTS


def test_a_round_trip_changes_no_type(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = Settings(_env_file=None, **NON_DEFAULTS)  # type: ignore[arg-type]
    again = from_environment(settings_env(chosen), monkeypatch)
    for name in Settings.model_fields:
        assert type(getattr(again, name)) is type(getattr(chosen, name)), name


def test_sessions_go_to_the_direct_url_else_the_database_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = from_environment({"RECORDINGS_DATABASE_URL": "postgresql://db/x"}, monkeypatch)
    assert plain.session_database_url == "postgresql://db/x"
    assert not plain.database_pooled
    empty = from_environment(
        {"RECORDINGS_DATABASE_URL": "postgresql://db/x", "RECORDINGS_DATABASE_DIRECT_URL": ""},
        monkeypatch,
    )
    assert empty.database_direct_url is None and not empty.database_pooled
    pooled = from_environment(
        {
            "RECORDINGS_DATABASE_URL": "postgresql://pgbouncer:6432/x",
            "RECORDINGS_DATABASE_DIRECT_URL": "postgresql://db:5432/x",
        },
        monkeypatch,
    )
    assert pooled.session_database_url == "postgresql://db:5432/x"
    assert pooled.database_pooled
