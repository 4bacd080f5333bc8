"""What a page shows of a recording, and the addresses of its media, peaks and deletion under
one API version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from db.recordings import Recording

VERSIONS = ("2008-08-01", "2010-04-01")


@dataclass(frozen=True)
class Version:
    """One API version's paths, which its pages link to."""

    name: str

    def account(self, root: str, account_sid: str) -> str:
        return f"{root}/{self.name}/Accounts/{account_sid}"

    def list_page(self, root: str, account_sid: str) -> str:
        return f"{self.account(root, account_sid)}/Recordings.html"

    def delete_suffix(self) -> str:
        # The 2010 API deletes `.json` instances; the 2008 one the bare SID.
        return ".json" if self.name == "2010-04-01" else ""


def clock(seconds: int) -> str:
    """``1:02:03`` or ``2:03``."""
    hours, rest = divmod(max(seconds, 0), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def moment(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


@dataclass(frozen=True)
class RecordingView:
    recording: Recording
    base: str  # .../Accounts/AC.../Recordings/RE...
    delete_suffix: str

    @classmethod
    def of(cls, recording: Recording, version: Version, root: str) -> RecordingView:
        base = f"{version.account(root, recording.account_sid)}/Recordings/{recording.sid}"
        return cls(recording, base, version.delete_suffix())

    @property
    def sid(self) -> str:
        return self.recording.sid

    @property
    def page_url(self) -> str:
        return f"{self.base}.html"

    @property
    def mp3_url(self) -> str:
        return f"{self.base}.mp3"

    @property
    def wav_url(self) -> str:
        return f"{self.base}.wav"

    @property
    def peaks_url(self) -> str:
        return f"{self.base}/Peaks.json"

    @property
    def delete_url(self) -> str:
        return f"{self.base}{self.delete_suffix}"

    @property
    def encrypted(self) -> bool:
        """Stored encrypted: its media is ciphertext, with no MP3 and no waveform."""
        return self.recording.encryption_details is not None

    @property
    def public_key_sid(self) -> str:
        return (self.recording.encryption_details or {}).get("public_key_sid", "")

    @property
    def duration(self) -> str:
        return clock(self.recording.duration)

    @property
    def date_created(self) -> str:
        return moment(self.recording.date_created)

    @property
    def created_short(self) -> str:
        """For the list's column, whose header says UTC."""
        return self.recording.date_created.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")

    @property
    def start_time(self) -> str:
        return moment(self.recording.start_time or self.recording.date_created)

    @property
    def channels(self) -> str:
        return {1: "mono", 2: "stereo"}.get(self.recording.channels, f"{self.recording.channels}")
