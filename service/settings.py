"""The service's settings: environment variables prefixed ``RECORDINGS_`` (a ``.env`` file too)."""

from __future__ import annotations

import shutil
from functools import cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RECORDINGS_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = "postgresql://recordings:recordings@127.0.0.1:5432/recordings"
    # PostgreSQL itself when database_url is a pooler in transaction mode (PgBouncer): what needs
    # a session of its own (the migration lock, LISTEN, locks held across transactions) goes
    # here. Unset: database_url.
    database_direct_url: str | None = None
    database_pool_size: int = Field(default=20, ge=1)
    database_timeout: float = Field(default=10.0, gt=0)

    s3_endpoint_url: str | None = None
    s3_bucket: str = "recordings"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    s3_region: str = "us-east-1"
    s3_key_prefix: str = ""
    s3_max_connections: int = Field(default=128, ge=1)
    s3_timeout: float = Field(default=30.0, gt=0)
    # How long a request waits for one of the s3_max_connections before a 503.
    s3_pool_timeout: float = Field(default=2.0, gt=0)

    ingest_token: str | None = None
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1)
    # Longer recordings are refused; it also bounds what decoding an upload may write to disk.
    max_duration_seconds: int = Field(default=4 * 3600, ge=1)
    max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    # Ingests of one process that hold their body in memory on its way to storage, at most
    # 24 MiB each (service.ingest.receiver); past it an upload is spooled to disk, as a short
    # one is, so a burst of long uploads cannot take the process's memory. 0: always spool.
    ingest_max_streamed: int = Field(default=8, ge=0)
    # A request's head must arrive within this (and a silent new connection is closed then).
    head_timeout_seconds: float = Field(default=10.0, gt=0)
    # A request body that stalls this long, while the service waits for it, ends the connection.
    body_idle_timeout_seconds: float = Field(default=30.0, gt=0)
    keep_alive_seconds: float = Field(default=5.0, gt=0)
    tmp_dir: str | None = None

    ffmpeg: str | None = None
    ffmpeg_timeout: float = Field(default=300.0, gt=0)
    ffmpeg_max_processes: int = Field(default=2, ge=1)
    ffmpeg_max_waiting: int = Field(default=64, ge=0)
    transcode_on_ingest: bool = True

    media_delivery: Literal["proxy", "redirect", "accel"] = "proxy"
    presign_endpoint_url: str | None = None
    presign_expires: int = Field(default=300, ge=1, le=7 * 24 * 3600)

    gc_grace_seconds: int = Field(default=3600, ge=0)
    # How long a deleted recording's objects stay in storage before gc removes them (0: at once).
    deleted_retention_seconds: int = Field(default=0, ge=0)
    # How long a deleted recording's metadata stays, shown only with IncludeSoftDeleted=true.
    soft_delete_retention_days: int = Field(default=40, ge=0)

    # Retention: recordings older than this many days are deleted (as a DELETE would) by the
    # worker's scheduled pass, in accounts without a policy of their own; unset: kept forever.
    retention_days: int | None = Field(default=None, ge=1)
    # How often the worker's scheduled pass runs (one pass per interval across all replicas),
    # and how many recordings one of its transactions deletes.
    retention_interval_seconds: float = Field(default=3600.0, gt=0)
    retention_batch_size: int = Field(default=500, ge=1, le=10000)
    # After each batch a pass rests this many times as long as the batch took: the lists it
    # shares PostgreSQL and the CPUs with stay fast, at the cost of a slower pass.
    retention_pause_ratio: float = Field(default=1.0, ge=0, le=100)

    @field_validator("retention_days", mode="before")
    @classmethod
    def _empty_days_are_unset(cls, value: object) -> object:
        # An empty variable (compose's `${RECORDINGS_RETENTION_DAYS:-}`) means "keep forever".
        return None if value == "" else value

    # The scheme, host and any path prefix clients reach the service at, for absolute URLs
    # (media_url); unset, each request's own (as trusted proxies forward it) is used.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")

    @field_validator("public_url", "database_direct_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # An empty variable (compose's `${RECORDINGS_PUBLIC_URL:-}`) means "not set".
        return value or None

    # Server key of at least 32 characters: AuthTokens are kept encrypted under a key derived
    # from it, so the worker can sign status callbacks. Unset: callbacks go out unsigned.
    secret_key: str | None = Field(default=None, min_length=32)
    # Allow status callbacks to loopback, private, link-local and other non-public addresses
    # (`recordings dev` and the tests); off, such URLs are refused at ingest and at delivery.
    webhook_allow_private: bool = False
    # Status callbacks: deliveries at a time per worker, their timeouts, the retry schedule
    # (exponential from the first delay up to the largest, until the window has passed).
    callback_concurrency: int = Field(default=8, ge=1)
    callback_connect_timeout: float = Field(default=5.0, gt=0)
    callback_timeout: float = Field(default=15.0, gt=0)
    callback_retry_initial_seconds: float = Field(default=1.0, gt=0)
    callback_retry_max_seconds: float = Field(default=1800.0, gt=0)
    callback_retry_window_seconds: float = Field(default=86400.0, gt=0)
    # Fairness (per worker): attempts under way at once to one receiving host (scheme, host,
    # port) and for one account (more only while a quarter of the slots stays free for the
    # others); a host that did not answer (timeout, refused connection) is
    # left alone for a cooldown from callback_retry_initial_seconds, doubling with each such
    # failure in a row, up to this many seconds. Its callbacks wait without counting attempts.
    callback_host_concurrency: int = Field(default=2, ge=1)
    callback_account_concurrency: int = Field(default=4, ge=1)
    callback_host_cooldown_max_seconds: float = Field(default=300.0, gt=0)
    # Delivered and failed callbacks stay this many days (`recordings callbacks list`), then
    # `recordings gc` forgets them; pending ones stay until they settle.
    callback_history_days: int = Field(default=30, ge=0)

    @field_validator("secret_key", mode="before")
    @classmethod
    def _empty_key_is_unset(cls, value: object) -> object:
        return value or None

    log_format: Literal["json", "text"] = "json"
    log_level: str = "INFO"
    access_log: bool = True
    # One chunk is one ASGI send: larger ones cost less CPU per byte (bench/proxy.py).
    stream_chunk_bytes: int = Field(default=1024 * 1024, ge=4096)
    # Proxy-mode bodies go from storage's socket to the client's by splice(2), never copied
    # through the service, where that works (Linux, plain HTTP on both sides); else chunks.
    # Off by default: a reader on the same host (nginx in front) pays for it (performance.md).
    stream_splice: bool = False
    # A media stream whose client takes no bytes for this long is ended.
    stream_send_timeout_seconds: float = Field(default=60.0, gt=0)
    # ... and after this long its storage connection is given back, the read resumed later.
    stream_release_after_seconds: float = Field(default=2.0, gt=0)
    # Concurrent media streams one client address may have open in one process: a backend job
    # or an office behind one address fetching 48 recordings at once fits. Past it, 429.
    max_streams_per_client: int = Field(default=64, ge=1)
    # Of those, how many may be stalled (their client took no bytes for
    # stream_release_after_seconds): what a slow-reading attacker holds. Past it, 503.
    max_stalled_streams_per_client: int = Field(default=8, ge=1)

    # `recordings worker` serves its own /metrics here when set (the API's are on its port).
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # When set, /metrics (the API's and the worker's) needs "Authorization: Bearer <token>".
    metrics_token: str | None = None
    worker_metrics_host: str = "0.0.0.0"

    @property
    def ffmpeg_path(self) -> str:
        """The ffmpeg binary: the setting, else the system's, else the imageio-ffmpeg wheel's."""
        return self.ffmpeg or _found_ffmpeg()

    @property
    def session_database_url(self) -> str:
        """Where sessions go: PostgreSQL itself, past any transaction pooler."""
        return self.database_direct_url or self.database_url

    @property
    def database_pooled(self) -> bool:
        """Whether database_url is a transaction pooler (a direct URL of its own is given)."""
        return self.session_database_url != self.database_url


@cache
def _found_ffmpeg() -> str:
    # A plain function, cached once per process: a cached_property would be copied, stale, by
    # model_copy(update={"ffmpeg": ...}).
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise RuntimeError("no ffmpeg found: install one or set RECORDINGS_FFMPEG") from exc
    return str(imageio_ffmpeg.get_ffmpeg_exe())


def settings_env(settings: Settings) -> dict[str, str]:
    """The ``RECORDINGS_...`` variables that give another process these settings."""
    env: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        env[f"RECORDINGS_{name.upper()}"] = str(value)
    return env
