"""The Twilio-compatible source, read through the official ``twilio`` library: its accounts,
its recordings page by page (PageToken paging), and deletes once a copy is verified."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import anyio
import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from service.imports.retries import Retryable, SourceError, check_status, with_retries

DEFAULT_API_URL = "https://api.twilio.com"
# The library logs every request, with its headers and query, at INFO: a line per request of a
# two-million-recording run. Its own logger is given one that speaks only of trouble.
_HTTP_LOG = logging.getLogger(__name__ + ".http")
_HTTP_LOG.setLevel(logging.WARNING)
# The largest page the 2010 API gives: fewest round trips, still a bounded amount in memory.
PAGE_SIZE = 1000


@dataclass(frozen=True)
class Credentials:
    """The source's credentials, as Twilio's libraries and CLI take them from the environment."""

    account_sid: str
    username: str
    password: str

    @property
    def auth_token(self) -> str | None:
        """The account's own AuthToken; None when an API key is used instead."""
        return self.password if self.username == self.account_sid else None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Credentials:
        """TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN, or with TWILIO_API_KEY + TWILIO_API_SECRET."""
        account_sid = environ.get("TWILIO_ACCOUNT_SID", "")
        if not account_sid:
            raise ValueError("TWILIO_ACCOUNT_SID is not set")
        key, secret = environ.get("TWILIO_API_KEY", ""), environ.get("TWILIO_API_SECRET", "")
        if key and secret:
            return cls(account_sid, key, secret)
        token = environ.get("TWILIO_AUTH_TOKEN", "")
        if not token:
            raise ValueError(
                "set TWILIO_AUTH_TOKEN, or TWILIO_API_KEY and TWILIO_API_SECRET,"
                " beside TWILIO_ACCOUNT_SID"
            )
        return cls(account_sid, account_sid, token)


@dataclass(frozen=True)
class SourceRecording:
    """One recording as the source lists it: every field the import keeps."""

    sid: str
    account_sid: str
    call_sid: str | None
    conference_sid: str | None
    date_created: datetime | None
    date_updated: datetime | None
    start_time: datetime | None
    duration: int
    channels: int
    source: str | None
    price: str | None
    price_unit: str | None
    status: str
    media_url: str | None
    # Twilio's encryption_details of a recording it stored encrypted (its media is then the
    # ciphertext, kept as it is); None: in the clear.
    encryption_details: dict[str, str] | None


@dataclass(frozen=True)
class SourceAccount:
    sid: str
    auth_token: str | None
    status: str | None


def _recording(instance: Any) -> SourceRecording:
    price = instance.price
    return SourceRecording(
        sid=instance.sid,
        account_sid=instance.account_sid,
        call_sid=instance.call_sid,
        conference_sid=instance.conference_sid,
        date_created=instance.date_created,
        date_updated=instance.date_updated,
        start_time=instance.start_time,
        duration=int(instance.duration or 0),
        channels=int(instance.channels or 1),
        source=instance.source,
        price=None if price is None else str(price),
        price_unit=instance.price_unit,
        status=str(instance.status or "unknown"),
        media_url=instance.media_url,
        encryption_details=_encryption_details(instance.encryption_details),
    )


def _encryption_details(value: Any) -> dict[str, str] | None:
    """The source's encryption_details as a flat map of strings; None when absent or empty."""
    if not value:
        return None
    if not isinstance(value, dict):
        return {"unreadable": str(value)[:200]}
    return {str(k): str(v) for k, v in value.items()}


def _translate(exc: Exception, what: str) -> SourceError:
    """The library's failures as the import's own: retryable or not."""
    if isinstance(exc, TwilioRestException):
        try:
            check_status(int(exc.status), {}, f"{what} (code {exc.code})")
        except SourceError as error:
            return error
        return SourceError(f"{what}: {exc.msg}")
    if isinstance(exc, TwilioException) and len(exc.args) > 1:
        # A list page that is not a 200: the library keeps the response as the second arg.
        response = exc.args[1]
        headers = dict(response.headers or {})
        try:
            check_status(int(response.status_code), headers, what)
        except SourceError as error:
            return error
    if isinstance(exc, requests.RequestException):
        # Resets, refused connections, timeouts, bodies cut short: worth another attempt.
        return Retryable(f"{what}: {type(exc).__name__}")
    return SourceError(f"{what}: {exc}")


class TwilioSource:
    """One set of credentials against one API host; every call is retried as section 14 says."""

    def __init__(self, credentials: Credentials, api_url: str, *, timeout: float = 60.0) -> None:
        self.credentials = credentials
        self.api_url = api_url.rstrip("/")
        self.client = Client(
            credentials.username,
            credentials.password,
            credentials.account_sid,
            http_client=TwilioHttpClient(logger=_HTTP_LOG, timeout=timeout),
            # Not os.environ: TWILIO_EDGE or TWILIO_REGION there would rewrite the API host.
            environment={},
        )
        self.client.api.base_url = self.api_url

    @property
    def auth(self) -> tuple[str, str]:
        """Basic credentials for the source's media URLs."""
        return (self.credentials.username, self.credentials.password)

    async def _call(self, what: str, call: Any, *args: Any, **kwargs: Any) -> Any:
        async def attempt() -> Any:
            try:
                return await anyio.to_thread.run_sync(lambda: call(*args, **kwargs))
            except (TwilioException, requests.RequestException) as exc:
                raise _translate(exc, what) from exc

        return await with_retries(attempt)

    async def subaccounts(self) -> list[SourceAccount]:
        """The accounts the credentials reach besides their own (Twilio's subaccounts)."""
        accounts = await self._call("listing accounts", self.client.api.v2010.accounts.list)
        return [
            SourceAccount(a.sid, a.auth_token, a.status)
            for a in accounts
            if a.sid != self.credentials.account_sid
        ]

    async def pages(
        self,
        account_sid: str,
        *,
        created_after: date | None = None,
        created_before: date | None = None,
    ) -> AsyncGenerator[list[SourceRecording]]:
        """The account's recordings, one page at a time, following next_page_uri (PageToken).

        A page that fails is asked again at the same URL, so a reset mid-list neither skips
        nor repeats a page.
        """
        recordings = self.client.api.v2010.accounts(account_sid).recordings
        filters: dict[str, Any] = {"page_size": PAGE_SIZE}
        if created_after is not None:
            filters["date_created_after"] = created_after
        if created_before is not None:
            filters["date_created_before"] = created_before
        page = await self._call("listing recordings", recordings.page, **filters)
        while True:
            yield [_recording(instance) for instance in page]
            url = page.next_page_url
            if not url:
                return
            page = await self._call("listing recordings", recordings.get_page, url)

    async def delete(self, account_sid: str, sid: str) -> None:
        """Delete a recording at the source (a 404 means it is gone already)."""
        recording = self.client.api.v2010.accounts(account_sid).recordings(sid)
        try:
            await self._call("deleting at the source", recording.delete)
        except SourceError as exc:
            if exc.status != 404:
                raise
