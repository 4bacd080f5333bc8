"""Which channels of a recording a download gets: Twilio's RequestedChannels rules."""

from __future__ import annotations

from db.recordings import Recording
from service.errors import BadRequest

# Twilio's conference recordings download as a mono mix unless both channels are asked for.
MIXED_BY_DEFAULT = frozenset({"Conference"})
REQUESTABLE = {"1": 1, "2": 2}


class ChannelsUnavailable(BadRequest):
    """RequestedChannels=2 of a recording that has one channel (Twilio's error 16113)."""

    code = 16113
    message = "RequestedChannels=2 was asked of a recording that has only one channel"


def parse_requested_channels(value: str | None) -> int | None:
    """``RequestedChannels`` as given (``1`` or ``2``); None when absent."""
    if value is None:
        return None
    if value not in REQUESTABLE:
        raise BadRequest(f"RequestedChannels must be 1 or 2, not {value[:20]!r}")
    return REQUESTABLE[value]


def mixed_to_mono(recording: Recording, requested: int | None) -> bool:
    """Whether the download is the recording's mono mix rather than its audio as stored."""
    if requested == 2:
        if recording.channels < 2:
            raise ChannelsUnavailable()
        return False
    if recording.channels < 2:
        return False  # mono already: 1 or nothing asks for what is stored
    return requested == 1 or recording.source in MIXED_BY_DEFAULT
