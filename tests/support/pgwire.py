"""What a PostgreSQL client sent, read back from a recording proxy's bytes (frontend messages
of protocol 3.0), so a test can count the statements and round trips a request cost."""

from __future__ import annotations

import struct
from dataclasses import dataclass

# Frontend messages that end a round trip: the client waits for the server after each.
SYNC = "S"
FLUSH = "H"


@dataclass(frozen=True)
class Message:
    kind: str
    body: bytes

    @property
    def query(self) -> str:
        """A Parse message's SQL (its statement name, then the query, each NUL-terminated)."""
        if self.kind != "P":
            raise ValueError(f"not a Parse message: {self.kind!r}")
        _, query, _ = self.body.split(b"\0", 2)
        return query.decode()


def frontend_messages(sent: bytes) -> list[Message]:
    """The typed messages in ``sent``, which must start at a message boundary after the startup
    exchange (a proxy's bytes marked once the connection was in use)."""
    messages = []
    at = 0
    while at + 5 <= len(sent):
        kind = chr(sent[at])
        (length,) = struct.unpack("!I", sent[at + 1 : at + 5])
        if not kind.isalpha() or length < 4:
            raise ValueError(f"not a frontend message at byte {at}: {sent[at : at + 5]!r}")
        messages.append(Message(kind, sent[at + 5 : at + 1 + length]))
        at += 1 + length
    if at != len(sent):
        raise ValueError(f"{len(sent) - at} bytes of a message cut short")
    return messages


def round_trips(messages: list[Message]) -> int:
    """How many times the client waited for the server."""
    return sum(1 for m in messages if m.kind in (SYNC, FLUSH))


def parsed(messages: list[Message], word: str) -> list[str]:
    """The statements parsed whose SQL mentions ``word``."""
    return [m.query for m in messages if m.kind == "P" and word in m.query]
