"""Recordings: one recording's row, written and read by its account and SID (the lists are in
db.listing, what deleted recordings leave behind in db.tombstones)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from db.callbacks import NewCallback
from db.pool import Db, Pool


@dataclass(frozen=True)
class Recording:
    sid: str
    account_sid: str
    call_sid: str
    duration: int
    date_created: datetime
    date_updated: datetime
    sample_rate: int
    channels: int
    wav_key: str
    wav_size: int
    wav_etag: str
    mp3_key: str | None
    mp3_size: int | None
    mp3_etag: str | None
    mp3_error: str | None
    mp3_created_at: datetime | None = None
    source: str = "RecordVerb"
    start_time: datetime | None = None
    conference_sid: str | None = None
    # Set on a soft-deleted recording: its metadata stays for a while, its media never does.
    deleted_at: datetime | None = None
    # Twilio's `encryption_details` of a recording stored encrypted (its WAV object is then the
    # ciphertext): {"type": "rsa-aes", "public_key_sid", "encrypted_cek", "iv"}; None: in clear.
    encryption_details: dict[str, str] | None = None
    # What Twilio charged, on recordings imported from it (`recordings import-twilio`).
    price: str | None = None
    price_unit: str | None = None


@dataclass(frozen=True)
class MediaLookup:
    """A recording with the account facts its public GET needs, from one query."""

    recording: Recording
    enforce_media_auth: bool
    token_salt: bytes
    token_hash: bytes
    # Origins whose pages may read the media with credentials (CORS).
    cors_origins: tuple[str, ...] = ()
    # The secondary AuthToken's hash, and whether the account and its parent are active.
    secondary_token_hash: bytes | None = None
    account_active: bool = True


_COLUMNS = (
    "r.sid, r.account_sid, r.call_sid, r.duration, r.date_created, r.date_updated,"
    " r.sample_rate, r.channels, r.wav_key, r.wav_size, r.wav_etag,"
    " r.mp3_key, r.mp3_size, r.mp3_etag, r.mp3_error, r.mp3_created_at,"
    # A recording whose platform gave no start time started when it was created (rows stored
    # before ingest filled it in included): start_time is never null.
    " r.source, coalesce(r.start_time, r.date_created) AS start_time, r.conference_sid,"
    " r.deleted_at, r.encryption_details, r.price, r.price_unit"
)


# Appended to a statement whose CTE ``gone`` returns tombstoned rows: their pending callbacks
# go in the same statement. A callback a worker holds right now may still be delivered once.
DROP_CALLBACKS = (
    "dropped AS (DELETE FROM callbacks c USING gone"
    " WHERE c.recording_sid = gone.sid AND c.account_sid = gone.account_sid"
    " AND c.status = 'pending')"
)


def _recording(row: asyncpg.Record) -> Recording:
    return Recording(
        sid=row["sid"],
        account_sid=row["account_sid"],
        call_sid=row["call_sid"],
        duration=row["duration"],
        date_created=row["date_created"],
        date_updated=row["date_updated"],
        sample_rate=row["sample_rate"],
        channels=row["channels"],
        wav_key=row["wav_key"],
        wav_size=row["wav_size"],
        wav_etag=row["wav_etag"],
        mp3_key=row["mp3_key"],
        mp3_size=row["mp3_size"],
        mp3_etag=row["mp3_etag"],
        mp3_error=row["mp3_error"],
        mp3_created_at=row["mp3_created_at"],
        source=row["source"],
        start_time=row["start_time"],
        conference_sid=row["conference_sid"],
        deleted_at=row["deleted_at"],
        encryption_details=_details(row["encryption_details"]),
        price=row.get("price"),
        price_unit=row.get("price_unit"),
    )


def _details(value: str | None) -> dict[str, str] | None:
    # asyncpg hands jsonb over as its text.
    return None if value is None else dict(json.loads(value))


# A recording's status callback, queued by the statement that inserts the recording (so both
# commit or neither does, in one round trip): to the given URL, else to the account's default.
_WITH_CALLBACK = (
    ", queued AS (INSERT INTO callbacks (account_sid, recording_sid, url, method, params,"
    " request_id, give_up_at)"
    " SELECT a.sid, r.sid, coalesce($18, a.status_callback),"
    " CASE WHEN $18::text IS NULL THEN a.status_callback_method ELSE $19 END,"
    " $20::jsonb, $21, now() + make_interval(secs => $22)"
    " FROM inserted r JOIN accounts a ON a.sid = r.account_sid"
    " WHERE coalesce($18, a.status_callback) IS NOT NULL)"
)

# A new recording's row as the statements that write one ($1 to $17, in stored_values' order).
INSERT_RECORDING = (
    "INSERT INTO recordings AS r (sid, account_sid, call_sid, duration, date_created,"
    " date_updated, sample_rate, channels, wav_key, wav_size, wav_etag, source, start_time,"
    " conference_sid, encryption_details, price, price_unit)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::jsonb, $16, $17)"
)


def stored_values(recording: Recording) -> list[object]:
    """The values of INSERT_RECORDING's columns for this recording."""
    details = recording.encryption_details
    return [
        recording.sid,
        recording.account_sid,
        recording.call_sid,
        recording.duration,
        recording.date_created,
        recording.date_updated,
        recording.sample_rate,
        recording.channels,
        recording.wav_key,
        recording.wav_size,
        recording.wav_etag,
        recording.source,
        recording.start_time,
        recording.conference_sid,
        None if details is None else json.dumps(details),
        recording.price,
        recording.price_unit,
    ]


async def insert_recording(
    pool: Pool, recording: Recording, callback: NewCallback | None = None
) -> Recording:
    """Store a recording whose WAV (or its ciphertext, with ``encryption_details``) is already
    durable in storage, with its status callback (to ``callback.url``, or the account's
    default) when one is given."""
    insert = f"{INSERT_RECORDING} RETURNING {_COLUMNS}"
    extra: list[object] = []
    if callback is not None:
        insert = f"WITH inserted AS ({insert}){_WITH_CALLBACK} SELECT * FROM inserted r"
        extra = [
            callback.url,
            callback.method or "POST",
            json.dumps(callback.params),
            callback.request_id,
            callback.window_seconds,
        ]
    row = await pool.fetchrow(
        insert,
        *stored_values(recording),
        *extra,
    )
    assert row is not None
    return _recording(row)


async def fetch_media(pool: Pool, account_sid: str, sid: str) -> MediaLookup | None:
    """A live recording of this account and its account's media-auth facts."""
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS}, a.enforce_media_auth, a.token_salt, a.token_hash, a.cors_origins,"
        " a.secondary_token_hash,"
        " a.status = 'active' AND coalesce(p.status, 'active') = 'active' AS account_active"
        " FROM recordings r JOIN accounts a ON a.sid = r.account_sid"
        " LEFT JOIN accounts p ON p.sid = a.parent_sid"
        " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL",
        account_sid,
        sid,
    )
    if row is None:
        return None
    return MediaLookup(
        recording=_recording(row),
        enforce_media_auth=row["enforce_media_auth"],
        token_salt=bytes(row["token_salt"]),
        token_hash=bytes(row["token_hash"]),
        cors_origins=tuple(row["cors_origins"]),
        secondary_token_hash=(
            None if row["secondary_token_hash"] is None else bytes(row["secondary_token_hash"])
        ),
        account_active=row["account_active"],
    )


async def fetch_recording(
    pool: Db, account_sid: str, sid: str, *, deleted_since: datetime | None = None
) -> Recording | None:
    """A recording of this account: live, or deleted at or after ``deleted_since`` if given."""
    if deleted_since is None:
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM recordings r"
            " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL",
            account_sid,
            sid,
        )
    else:
        row = await pool.fetchrow(
            f"SELECT {_COLUMNS} FROM recordings r WHERE r.account_sid = $1 AND r.sid = $2"
            " AND (r.deleted_at IS NULL OR r.deleted_at >= $3)",
            account_sid,
            sid,
            deleted_since,
        )
    return _recording(row) if row else None


async def set_mp3(
    pool: Pool,
    account_sid: str,
    sid: str,
    *,
    key: str,
    size: int,
    etag: str,
    created_at: datetime | None = None,
) -> Recording | None:
    """Record a cached MP3 that is durable in storage; None when the recording is gone.

    ``created_at`` (default: now) is its Last-Modified, which answers served before it was
    stored already gave.
    """
    row = await pool.fetchrow(
        "UPDATE recordings r SET mp3_key = $2, mp3_size = $3, mp3_etag = $4,"
        " mp3_error = NULL, mp3_created_at = coalesce($5, now())"
        f" WHERE r.account_sid = $6 AND r.sid = $1 AND r.deleted_at IS NULL RETURNING {_COLUMNS}",
        sid,
        key,
        size,
        etag,
        created_at,
        account_sid,
    )
    return _recording(row) if row else None


async def set_mp3_error(pool: Pool, account_sid: str, sid: str, message: str) -> None:
    """Remember that this recording's audio cannot be transcoded, so it is not retried."""
    await pool.execute(
        "UPDATE recordings SET mp3_error = $3"
        " WHERE account_sid = $1 AND sid = $2 AND deleted_at IS NULL",
        account_sid,
        sid,
        message,
    )


async def tombstone_recording(pool: Pool, account_sid: str, sid: str) -> Recording | None:
    """Hide a live recording at once, and drop its status callbacks not yet delivered (no app
    hears "completed" of a recording it can no longer fetch); None when there was none to hide."""
    row = await pool.fetchrow(
        "WITH gone AS (UPDATE recordings r SET deleted_at = now(), date_updated = now()"
        " WHERE r.account_sid = $1 AND r.sid = $2 AND r.deleted_at IS NULL"
        f" RETURNING {_COLUMNS}), {DROP_CALLBACKS} SELECT * FROM gone",
        account_sid,
        sid,
    )
    return _recording(row) if row else None
