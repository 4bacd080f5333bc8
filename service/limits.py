"""Per-client shares of what a process has: no one address may take it all.

A busy client (a backend job, an office behind one NAT address) opens many streams and reads
them all; a hostile one opens streams and reads nothing. The two are told apart by what their
streams do: a stream is *flowing* once its client has drained a chunk (a send after the first
completed), *stalled* while its client has taken no bytes for a while (it has given its storage
connection back by then). An address's share of streams is large; only a few of them may stall.
A stream asked for past the share waits a little for one of the address's own to end, long
enough for the others to show whether they flow or stall.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from enum import Enum
from typing import Literal

State = Literal["new", "flowing", "stalled"]


class Refusal(Enum):
    # Over its share while its streams flow: a busy client, which should pace itself (429).
    OVER_SHARE = "over_share"
    # Its streams are held open and not read: they take this process's room (503).
    STALLED = "stalled"


class ClientSlot:
    """One stream of one client, told what its client does; given back once."""

    def __init__(self, slots: ClientSlots, client: str) -> None:
        self._slots = slots
        self._client = client
        self._state: State | None = "new"
        self._sends = 0

    @property
    def state(self) -> State | None:
        """None once given back."""
        return self._state

    def sent(self) -> None:
        """A send completed: past the first (which only fills buffers), the client reads."""
        self._sends += 1
        if self._sends > 1 or self._state == "stalled":
            self._move("flowing")

    def stalled(self) -> None:
        """The client has taken no bytes for a while."""
        self._move("stalled")

    def give_back(self) -> None:
        self._move(None)

    def _move(self, state: State | None) -> None:
        if self._state is None or self._state == state:
            return
        self._slots.moved(self._client, self._state, state)
        self._state = state


class ClientSlots:
    """At most ``per_client`` open streams for each client address, and at most
    ``stalled_per_client`` stalled ones. Used from one event loop."""

    def __init__(self, per_client: int, stalled_per_client: int) -> None:
        self.per_client = per_client
        self.stalled_per_client = stalled_per_client
        self._counts: dict[State, Counter[str]] = {
            "new": Counter(),
            "flowing": Counter(),
            "stalled": Counter(),
        }
        # Set (and dropped) when a slot of that client changes: its waiters look again.
        self._changed: dict[str, asyncio.Event] = {}
        self._waiting: Counter[str] = Counter()

    def try_take(self, client: str) -> ClientSlot | Refusal | None:
        """A slot for ``client``, why it gets none, or None when that is not clear yet (its
        share is taken by streams that are neither shown to flow nor to stall)."""
        stalled = self._counts["stalled"][client]
        if stalled >= self.stalled_per_client:
            return Refusal.STALLED
        held = self.held(client)
        if held < self.per_client:
            self._counts["new"][client] += 1
            return ClientSlot(self, client)
        if stalled >= held:
            return Refusal.STALLED
        return None

    async def take(self, client: str, *, wait: float) -> ClientSlot | Refusal:
        """A slot for ``client``, waiting up to ``wait`` seconds for one of its own streams to
        end (a burst of a busy client is served rather than refused), or why it gets none."""
        taken = self.try_take(client)
        if taken is not None:
            return taken
        if self._waiting[client] >= self.per_client:
            return self._verdict(client)
        self._waiting[client] += 1
        try:
            async with asyncio.timeout(wait):
                while (taken := self.try_take(client)) is None:
                    changed = self._changed.setdefault(client, asyncio.Event())
                    await changed.wait()
            return taken
        except TimeoutError:
            return self._verdict(client)
        finally:
            self._uncount(self._waiting, client)

    def _verdict(self, client: str) -> Refusal:
        # Any stream that takes its bytes makes this a busy client over its share.
        flowing = self._counts["flowing"][client] > 0
        return Refusal.OVER_SHARE if flowing else Refusal.STALLED

    def moved(self, client: str, old: State, new: State | None) -> None:
        """A slot of ``client`` went from ``old`` to ``new`` (None: given back)."""
        self._uncount(self._counts[old], client)
        if new is not None:
            self._counts[new][client] += 1
        if (changed := self._changed.pop(client, None)) is not None:
            changed.set()

    def held(self, client: str) -> int:
        return sum(counter[client] for counter in self._counts.values())

    def count(self, client: str, state: State) -> int:
        return self._counts[state][client]

    @staticmethod
    def _uncount(counter: Counter[str], client: str) -> None:
        counter[client] -= 1
        if counter[client] <= 0:
            del counter[client]
