"""Fair delivery: how many attempts one receiving host and one account may have under way at
once, and a circuit breaker per host, as the larger webhook senders do it (a concurrency
limit per endpoint, backoff per endpoint rather than per message).

Without it, eight callbacks to a receiver that never answers took all eight of a worker's
slots for their whole timeout, at every retry, and every other account's callbacks waited.
Now a host gets ``host_limit`` slots and an account ``account_limit``, and more only while a
quarter of the worker's slots (at least one) stays free for everyone else: one busy receiver
still gets most of an idle worker, and no one can take it all. A host whose attempt timed out
or refused the connection is left alone for a cooldown that doubles with each such failure in
a row (up to ``cooldown_max``) and ends at its first answer. A callback that may not start now
is deferred in the outbox without counting as an attempt.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# A callback held back because its host or account is at its limit is looked at again after
# this long (an attempt under way usually ends sooner).
BUSY_DEFER_SECONDS = 0.5


def host_of(url: str) -> str:
    """The receiving endpoint a limit applies to: scheme, host and port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port or ''}"


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0


@dataclass
class Fairness:
    """The worker's per-host and per-account bookkeeping (in memory, one per worker)."""

    host_limit: int
    account_limit: int
    cooldown_initial: float
    cooldown_max: float
    slots: int = 8
    clock: Callable[[], float] = time.monotonic
    _hosts: Counter[str] = field(default_factory=Counter)
    _accounts: Counter[str] = field(default_factory=Counter)
    _breakers: dict[str, _Breaker] = field(default_factory=dict)

    def wait_seconds(self, host: str, account: str) -> float:
        """0 when an attempt to ``host`` for ``account`` may start now, else how long to defer."""
        breaker = self._breakers.get(host)
        if breaker is not None and breaker.open_until > self.clock():
            return breaker.open_until - self.clock()
        over = self._hosts[host] >= self.host_limit or self._accounts[account] >= self.account_limit
        if over and self.slots - self.busy() - 1 < self.reserved:
            return BUSY_DEFER_SECONDS
        return 0.0

    @property
    def reserved(self) -> int:
        """Slots a host or account past its limit leaves free for the others."""
        return max(1, self.slots // 4)

    def busy(self) -> int:
        """Attempts under way."""
        return sum(self._hosts.values())

    def started(self, host: str, account: str) -> None:
        self._hosts[host] += 1
        self._accounts[account] += 1

    def finished(self, host: str, account: str, *, answered: bool) -> None:
        """An attempt ended; ``answered``: the host sent an HTTP answer (any status)."""
        self._hosts[host] -= 1
        self._accounts[account] -= 1
        if self._hosts[host] <= 0:
            del self._hosts[host]
        if self._accounts[account] <= 0:
            del self._accounts[account]
        if answered:
            self._breakers.pop(host, None)
            return
        breaker = self._breakers.setdefault(host, _Breaker())
        breaker.failures += 1
        cooldown = min(
            self.cooldown_max, self.cooldown_initial * 2 ** min(breaker.failures - 1, 30)
        )
        breaker.open_until = max(breaker.open_until, self.clock() + cooldown)

    def cooling(self) -> int:
        """How many hosts are in their cooldown now (a gauge)."""
        now = self.clock()
        return sum(1 for b in self._breakers.values() if b.open_until > now)
