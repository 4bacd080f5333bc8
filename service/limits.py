"""Per-client shares of what a process has: no one address may take it all."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class ClientSlots:
    """At most ``per_client`` of something (open media streams, say) for each client address."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._held: Counter[str] = Counter()

    def try_take(self, client: str) -> Callable[[], None] | None:
        """A slot for ``client`` and the function that gives it back; None when all are taken."""
        if self._held[client] >= self.per_client:
            return None
        self._held[client] += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if given_back:
                return
            given_back = True
            self._held[client] -= 1
            if self._held[client] <= 0:
                del self._held[client]

        return give_back

    def held(self, client: str) -> int:
        return self._held[client]
