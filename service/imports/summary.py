"""What an import did, counted as it goes: the `--json` summary and the progress line."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Failure:
    sid: str
    reason: str


@dataclass
class Summary:
    copied: int = 0
    # Recordings not copied, by why: a source status other than completed, "already here", ...
    skipped: Counter[str] = field(default_factory=Counter)
    failed: list[Failure] = field(default_factory=list)
    bytes: int = 0
    # Recordings deleted at the source after a verified copy (--delete-source).
    deleted_at_source: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started

    @property
    def seen(self) -> int:
        return self.copied + sum(self.skipped.values()) + len(self.failed)

    def fail(self, sid: str, reason: str) -> None:
        self.failed.append(Failure(sid, reason))

    def as_json(self) -> dict[str, Any]:
        """Section 14's summary: copied, skipped, failed, bytes, seconds (and the details)."""
        return {
            "copied": self.copied,
            "skipped": sum(self.skipped.values()),
            "failed": [{"sid": f.sid, "reason": f.reason} for f in self.failed],
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "skipped_by_reason": dict(sorted(self.skipped.items())),
            "deleted_at_source": self.deleted_at_source,
        }

    def progress_line(self) -> str:
        """One line for a terminal: recordings, bytes, rates."""
        seconds = max(self.seconds, 1e-6)
        return (
            f"{self.copied} copied, {sum(self.skipped.values())} skipped,"
            f" {len(self.failed)} failed, {self.bytes / 1e6:.1f} MB,"
            f" {self.copied / seconds:.1f} recordings/s, {self.bytes / 1e6 / seconds:.1f} MB/s"
        )
