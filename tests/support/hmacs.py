"""A stand-in for the ``hmac`` module inside service.accounts.auth that counts what it is asked."""

from __future__ import annotations

import hmac
from typing import Any


class CountingHmac:
    """Counts HMACs made and digests compared (with their lengths), then does the real thing."""

    def __init__(self) -> None:
        self.new_calls = 0
        self.compares: list[tuple[int, int]] = []

    def reset(self) -> None:
        self.new_calls, self.compares = 0, []

    def new(self, *args: Any, **kwargs: Any) -> Any:
        self.new_calls += 1
        return hmac.new(*args, **kwargs)

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        self.compares.append((len(a), len(b)))
        return hmac.compare_digest(a, b)
