"""The ``Range`` header of a single byte range, as browsers send it to seek media."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPEC = re.compile(r"([0-9]{0,19})-([0-9]{0,19})")


@dataclass(frozen=True)
class ByteRange:
    """Bytes ``first..last`` inclusive of a representation of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


class Unsatisfiable:
    """A well-formed range that lies wholly past the end: answered with 416."""


UNSATISFIABLE = Unsatisfiable()


def parse_range(header: str | None, size: int) -> ByteRange | Unsatisfiable | None:
    """The one range the header asks for; None means "send the whole body".

    Malformed headers, other units and multi-range requests get the whole body: multipart
    answers buy a media client nothing, and RFC 9110 lets a server ignore Range.
    """
    if not header:
        return None
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None
    parts = [p.strip() for p in specs.split(",")]
    if len(parts) != 1:
        return None
    match = _SPEC.fullmatch(parts[0])
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1, size)
    first = int(first_text)
    last = int(last_text) if last_text else None
    if last is not None and last < first:
        return None
    if first >= size:
        return UNSATISFIABLE
    return ByteRange(first, size - 1 if last is None else min(last, size - 1), size)
