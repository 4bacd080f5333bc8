"""Measuring a PCM WAV as it streams past, without keeping it: the same check as at rest.

``service.audio.probe`` validates a WAV by walking its RIFF chunk headers with seeks. A body that
goes to storage as it arrives cannot be seeked, but the walk only ever reads a few bytes at
offsets the bytes before them name (the RIFF header, each chunk's header, the ``fmt `` body).
``WavScan`` keeps exactly those as they pass; at the end the unchanged validator runs over them
(``parse_pcm_wav_file`` on a sparse file), so a streamed WAV is accepted, and its duration
measured, exactly as a spooled one would be.
"""

from __future__ import annotations

import io
import struct
from typing import BinaryIO, cast

from service.audio.probe import AudioInfo, parse_pcm_wav_file

_RIFF_HEADER = 12
_CHUNK_HEADER = 8
# What the validator reads at most of a ``fmt `` body, and how many chunks it walks.
_MAX_FMT_KEPT = 1024
_MAX_HEADERS = 1025
_PCM_TAGS = (0x0001, 0xFFFE)


class _Sparse(io.RawIOBase):
    """A read-only file of ``size`` bytes of which only some ranges are known; reading any
    other byte is an OSError, which the validator takes as "not a WAV"."""

    def __init__(self, pieces: dict[int, bytes], size: int) -> None:
        super().__init__()
        self._pieces = pieces
        self._size = size
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def read(self, size: int = -1) -> bytes:
        piece = self._pieces.get(self._pos)
        wanted = len(piece) if piece is not None and size < 0 else size
        if piece is None or (wanted > len(piece) and self._pos + len(piece) < self._size):
            raise OSError(f"byte {self._pos} of the upload was not kept")
        data = piece[:wanted]
        self._pos += len(data)
        return data


class WavScan:
    """Fed every byte of a body in order (``feed``); keeps what the WAV validator reads."""

    def __init__(self) -> None:
        self._pieces: dict[int, bytes] = {}
        # The range being kept now: what it is, its offset and length, and its bytes so far.
        self._kind = "riff"
        self._start = 0
        self._length = _RIFF_HEADER
        self._got = bytearray()
        # Where the chunk after a fmt body starts, while that body is being kept.
        self._after_fmt = 0
        self._headers = 0
        self._riff_end: int | None = None
        self._fmt_tag: int | None = None
        self.received = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """The next bytes of the body."""
        view = memoryview(data)
        offset, self.received = self.received, self.received + len(view)
        # Ranges lie at offsets the bytes before them name: most feeds skip this loop at once.
        while self._length and offset <= self._start + len(self._got) < self.received:
            at = self._start + len(self._got) - offset
            self._got += view[at : at + self._length - len(self._got)]
            if len(self._got) == self._length:
                self._kept(bytes(self._got))

    def _kept(self, got: bytes) -> None:
        self._pieces[self._start] = got
        self._got = bytearray()
        if self._kind == "riff":
            if got[:4] == b"RIFF" and got[8:12] == b"WAVE":
                self._riff_end = 8 + struct.unpack_from("<I", got, 4)[0]
            self._want("header", _RIFF_HEADER, _CHUNK_HEADER)
        elif self._kind == "fmt":
            if self._fmt_tag is None and len(got) >= 2:
                self._fmt_tag = struct.unpack_from("<H", got)[0]
            self._want("header", self._after_fmt, _CHUNK_HEADER)
        else:
            self._headers += 1
            size = struct.unpack_from("<I", got, 4)[0]
            after = self._start + _CHUNK_HEADER + size + (size & 1)
            if self._headers >= _MAX_HEADERS:
                self._length = 0
            elif got[:4] == b"fmt " and size:
                self._after_fmt = after
                self._want("fmt", self._start + _CHUNK_HEADER, min(size, _MAX_FMT_KEPT))
            else:
                self._want("header", after, _CHUNK_HEADER)

    def _want(self, kind: str, start: int, length: int) -> None:
        self._kind, self._start, self._length = kind, start, length

    def looks_like_pcm_wav(self, size: int) -> bool:
        """Whether the bytes seen so far begin a linear PCM WAV of ``size`` bytes in all (the
        final word is ``measure``'s, once every byte has passed)."""
        return self._riff_end in (size, size + 1) and self._fmt_tag in _PCM_TAGS

    def measure(self) -> AudioInfo | None:
        """The WAV's layout, as ``service.audio.probe.parse_pcm_wav`` would find it in a file of
        these bytes, or None for anything it would refuse."""
        pieces = dict(self._pieces)
        if self._got:
            # A range the body ended inside: what a file of these bytes would give a read.
            pieces[self._start] = bytes(self._got)
        sparse = cast(BinaryIO, _Sparse(pieces, self.received))
        return parse_pcm_wav_file(sparse, self.received)
