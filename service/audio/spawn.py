"""Child processes started by Python's subprocess, with their pipes as asyncio streams.

Under uvloop, ``asyncio.create_subprocess_exec`` is libuv's spawn, which forks the whole
service: 11-13 ms at 200 MB resident (and growing with it), where subprocess uses vfork and
takes about 1 ms whatever the size (``bench/``, benchmark 3). For a one-minute recording that
is a tenth of the MP3's time. The exit is awaited on a pidfd where Linux has one, else on a
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from typing import IO


class Child:
    """A running process: ``stdin`` (when piped), ``stdout`` (when piped), ``stderr``."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter | None,
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader,
    ) -> None:
        self._popen = popen
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._exited = _exit_of(popen)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    async def wait(self) -> int:
        """The exit status, once the process has exited (its pipes may still be open)."""
        return await asyncio.shield(self._exited)


def _exit_of(popen: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    loop = asyncio.get_running_loop()
    try:
        pidfd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):  # not Linux 5.3+: a thread waits instead
        return asyncio.ensure_future(asyncio.to_thread(popen.wait))
    exited: asyncio.Future[int] = loop.create_future()

    def reap() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        # Readable means exited: this wait does not block.
        code = popen.wait()
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(pidfd, reap)
    return exited


async def spawn(
    args: list[str], *, stdin: IO[bytes] | int, stdout: int, env: dict[str, str]
) -> Child:
    """Start ``args`` in a session of its own (so its whole group can be killed).

    ``stdin`` is a file to read, or ``subprocess.PIPE`` for a writer; ``stdout`` is
    ``subprocess.PIPE`` or ``subprocess.DEVNULL``; stderr is always piped.

    The "pipes" are socket pairs. An event loop's pipe transport owns the descriptor it is given,
    and uvloop's closes it twice when it was given a file object: once in libuv, then through
    the file object; a descriptor opened in between by another thread (an upload being spooled
    by a worker thread) was closed under it. Given a socket, uvloop detaches it instead, and
    asyncio's own transport closes it once.
    """
    loop = asyncio.get_running_loop()
    ours: list[socket.socket] = []
    theirs: list[socket.socket] = []

    def pair() -> int:
        mine, child = socket.socketpair()
        ours.append(mine)
        theirs.append(child)
        return child.fileno()

    try:
        child_stdin = pair() if stdin == subprocess.PIPE else stdin
        child_stdout = pair() if stdout == subprocess.PIPE else stdout
        child_stderr = pair()
        # Blocking, deliberately: a vfork and an exec, about a millisecond (see above).
        popen = subprocess.Popen(  # noqa: ASYNC220
            args,
            stdin=child_stdin,
            stdout=child_stdout,
            stderr=child_stderr,
            start_new_session=True,
            env=env,
        )
    except BaseException:
        for end in ours:
            end.close()
        raise
    finally:
        for end in theirs:  # the child has its copies
            end.close()
    try:
        ends = iter(ours)
        writer = None
        if stdin == subprocess.PIPE:
            protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader(), loop=loop)
            transport, _ = await loop.connect_write_pipe(lambda: protocol, next(ends))
            writer = asyncio.StreamWriter(transport, protocol, None, loop)
        reader = await _read_pipe(next(ends)) if stdout == subprocess.PIPE else None
        errors = await _read_pipe(next(ends))
        return Child(popen, writer, reader, errors)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait()
        for end in ours:
            end.close()
        raise


class _PipeReader(asyncio.StreamReaderProtocol):
    def eof_received(self) -> bool:
        super().eof_received()
        # The child's side only writes: nothing to keep the transport open for (uvloop would).
        return False


async def _read_pipe(pipe: socket.socket) -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    await loop.connect_read_pipe(lambda: _PipeReader(reader, loop=loop), pipe)
    return reader
