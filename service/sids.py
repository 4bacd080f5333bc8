"""SIDs: a two-letter prefix and 32 lowercase hex digits from a CSPRNG."""

from __future__ import annotations

import re
import secrets

ACCOUNT = re.compile(r"AC[0-9a-f]{32}")
RECORDING = re.compile(r"RE[0-9a-f]{32}")
CALL = re.compile(r"CA[0-9a-f]{32}")
CONFERENCE = re.compile(r"CF[0-9a-f]{32}")
PUBLIC_KEY = re.compile(r"CR[0-9a-f]{32}")


def new_sid(prefix: str) -> str:
    """A fresh SID with this prefix."""
    return prefix + secrets.token_hex(16)


def is_account_sid(value: str) -> bool:
    return ACCOUNT.fullmatch(value) is not None


def is_recording_sid(value: str) -> bool:
    return RECORDING.fullmatch(value) is not None


def is_call_sid(value: str) -> bool:
    return CALL.fullmatch(value) is not None


def is_conference_sid(value: str) -> bool:
    return CONFERENCE.fullmatch(value) is not None


def is_public_key_sid(value: str) -> bool:
    return PUBLIC_KEY.fullmatch(value) is not None
