"""What an answer must never show: tracebacks, library and file names, addresses, SQL, secrets."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from service.settings import Settings
from tests.support.clients import INGEST_TOKEN
from tests.support.rawhttp import RawResponse

LEAK_MARKERS = [
    "Traceback",
    "127.0.0.1",
    'File "',
    "asyncpg",
    "botocore",
    "aiobotocore",
    "psycopg",
    "SELECT",
    "INSERT INTO",
    "UPDATE recordings",
    "FROM recordings",
    "postgresql://",
    "/work/",
    "/tmp/",
    "/usr/",
    "site-packages",
    "recordings-tests",  # the bucket
    "ffmpeg version",
    "Errno",
]


def secrets_of(settings: Settings) -> list[str]:
    """The values of these settings no client may ever see."""
    values = [
        INGEST_TOKEN,
        settings.s3_access_key_id or "",
        settings.s3_secret_access_key or "",
        settings.secret_key or "",
        settings.database_url,
        urlsplit(settings.s3_endpoint_url or "").netloc,
        f":{urlsplit(settings.database_url).port}",
    ]
    return [v for v in values if v]


def assert_no_internals(response: httpx.Response | RawResponse, settings: Settings) -> None:
    """Neither the body nor the headers show a leak marker or one of the settings' secrets."""
    if isinstance(response, RawResponse):
        status, body, headers = response.status, response.body, response.headers
    else:
        status, body = response.status_code, response.content
        headers = list(response.headers.items())
    text = body.decode("utf-8", "replace")
    head = "\n".join(f"{k}: {v}" for k, v in headers)
    for marker in [*LEAK_MARKERS, *secrets_of(settings)]:
        assert marker not in text, f"{status} body shows {marker!r}: {text[:500]}"
        assert marker not in head, f"{status} headers show {marker!r}: {head}"
