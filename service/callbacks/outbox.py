"""What a recording's status callback says and where it goes, queued with the recording's row,
and when a failed attempt is tried again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from db.callbacks import NewCallback
from db.recordings import Recording
from service.callbacks.guard import (
    Resolver,
    check_callback_url,
    parse_callback_url,
    system_resolver,
)

METHODS = ("POST", "GET")
DEFAULT_METHOD = "POST"
# RecordingUrl of a recording made by `recordings import` when RECORDINGS_PUBLIC_URL is unset:
# where `recordings serve` listens by default. Set RECORDINGS_PUBLIC_URL for anything else.
IMPORT_FALLBACK_BASE_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class CallbackTarget:
    """A status callback URL that passed the guard, and its HTTP method."""

    url: str
    method: str = DEFAULT_METHOD


async def check_target(
    url: str,
    method: str | None,
    *,
    allow_private: bool,
    resolver: Resolver = system_resolver,
) -> CallbackTarget:
    """A target the service may call; UrlRefused (a ValueError) says why not.

    With private addresses allowed only the URL's form is checked (no DNS at all); otherwise
    its host must resolve to public addresses only. Delivery checks again: DNS can change.
    """
    chosen = (method or DEFAULT_METHOD).upper()
    if chosen not in METHODS:
        raise ValueError("the method must be POST or GET")
    if allow_private:
        parse_callback_url(url)
    else:
        await check_callback_url(url, allow_private=False, resolver=resolver)
    return CallbackTarget(url, chosen)


def recording_url(base_url: str, recording: Recording) -> str:
    """The recording's absolute URL without an extension, as Twilio's RecordingUrl."""
    return (
        f"{base_url.rstrip('/')}/2010-04-01/Accounts/{recording.account_sid}"
        f"/Recordings/{recording.sid}"
    )


def status_params(recording: Recording, base_url: str) -> dict[str, str]:
    """The parameters Twilio sends when a recording is completed."""
    started = (recording.start_time or recording.date_created).astimezone(UTC)
    params = {
        "AccountSid": recording.account_sid,
        "CallSid": recording.call_sid,
        "RecordingSid": recording.sid,
        "RecordingUrl": recording_url(base_url, recording),
        "RecordingStatus": "completed",
        "RecordingDuration": str(recording.duration),
        "RecordingChannels": str(recording.channels),
        "RecordingStartTime": format_datetime(started.replace(microsecond=0)),
        "RecordingSource": recording.source,
    }
    if recording.encryption_details is not None:
        # A JSON string, as Twilio sends it: what decrypts the media at RecordingUrl.
        params["EncryptionDetails"] = json.dumps(recording.encryption_details)
    return params


def new_callback(
    recording: Recording,
    target: CallbackTarget | None,
    *,
    base_url: str,
    request_id: str | None,
    window_seconds: float,
) -> NewCallback:
    """The recording's callback, to be inserted with it: to ``target``, else to the account's
    default if it has one (decided by the insert, from the account's row)."""
    return NewCallback(
        url=target.url if target else None,
        method=target.method if target else None,
        params=status_params(recording, base_url),
        request_id=request_id,
        window_seconds=window_seconds,
    )


def retry_delay(attempts: int, *, initial: float, maximum: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones: initial, 2x, 4x ... maximum."""
    return float(min(maximum, initial * 2 ** min(max(attempts - 1, 0), 62)))


def next_attempt(
    now: datetime, attempts: int, give_up_at: datetime, *, initial: float, maximum: float
) -> datetime | None:
    """When to try again after a retryable failure, None when the window has passed.

    The last try is made at the window's end itself, so a receiver that comes back just before
    it still gets its callback.
    """
    if now >= give_up_at:
        return None
    at = now + timedelta(seconds=retry_delay(attempts, initial=initial, maximum=maximum))
    return min(at, give_up_at)
