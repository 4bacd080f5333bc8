"""Running ffmpeg safely: fed through a pipe, bounded in time, always killed and reaped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.audio.spawn import Child, spawn

STDERR_TAIL = 4 * 1024


class FfmpegBusy(Exception):
    """Every ffmpeg slot of this process is taken and too many runs already wait for one."""


class FfmpegSlots:
    """The ffmpeg processes one process may run at once, shared by every kind of run (MP3s,
    uploads to normalise), and how many runs may wait for a turn before the next is refused."""

    def __init__(self, max_processes: int, max_waiting: int) -> None:
        self._free = asyncio.Semaphore(max_processes)
        self._max_waiting = max_waiting
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._free.locked() and self._waiting >= self._max_waiting:
            raise FfmpegBusy()
        self._waiting += 1
        try:
            await self._free.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._free.release()


@dataclass(frozen=True)
class FfmpegResult:
    returncode: int | None  # None: killed at the deadline
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


# Sinks of ffmpeg's standard output (``pipe:1``): each chunk as it comes.
OutputSink = Callable[[bytes], None]


async def run_ffmpeg(
    args: list[str],
    source: AsyncIterable[bytes] | Path,
    *,
    timeout: float,
    output: OutputSink | None = None,
) -> FfmpegResult:
    """Run ``args`` with ``source`` on stdin; the process group is killed on every way out.

    A file source becomes stdin itself, so ffmpeg can seek in it (``-i fd:``); a stream is fed
    through a pipe. A stream that raises (storage cut off mid-object, say) propagates after
    ffmpeg is dead. With ``output``, ffmpeg's stdout is handed to it chunk by chunk (a sink
    that raises stops ffmpeg, and its exception propagates); without, stdout is discarded.
    """
    if isinstance(source, Path):
        with source.open("rb") as stdin:
            return await _run(args, stdin, None, timeout=timeout, output=output)
    return await _run(args, subprocess.PIPE, source, timeout=timeout, output=output)


async def _run(
    args: list[str],
    stdin: Any,
    source: AsyncIterable[bytes] | None,
    *,
    timeout: float,
    output: OutputSink | None,
) -> FfmpegResult:
    stdin_ready: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()
    if source is not None:
        feeder = asyncio.create_task(_feed(stdin_ready, source))
        # One turn of the loop lets the feeder send its first read (a storage GET) before the
        # spawn holds the loop, so the round trip overlaps ffmpeg's start-up.
        await asyncio.sleep(0)
    else:
        feeder = asyncio.create_task(asyncio.sleep(0))
    try:
        proc = await spawn(
            args,
            stdin=stdin,
            stdout=subprocess.PIPE if output is not None else subprocess.DEVNULL,
            # FFREPORT and friends in our environment would make ffmpeg write files of its own.
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        )
    except BaseException:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        raise
    assert proc.stderr is not None
    tail = bytearray()
    if source is not None:
        assert proc.stdin is not None
        stdin_ready.set_result(proc.stdin)
        # However the feeder ends (a first read that failed included), ffmpeg sees EOF.
        feeder.add_done_callback(lambda _: proc.stdin.close() if proc.stdin else None)
    reader = asyncio.create_task(_collect_tail(proc.stderr, tail))
    if output is not None:
        assert proc.stdout is not None
        drainer = asyncio.create_task(_drain(proc.stdout, output))
    else:
        drainer = asyncio.create_task(asyncio.sleep(0))
    returncode: int | None = None
    try:
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                # Waiting for stderr EOF as well means all of ffmpeg's messages are in; for
                # stdout's, that the sink has had every byte before the result is given.
                await asyncio.gather(reader, drainer)
                returncode = await proc.wait()
        except TimeoutError:
            returncode = None
    finally:
        await asyncio.shield(_kill_and_reap(proc, feeder, reader, drainer))
    for task in (feeder, drainer):
        if not task.cancelled() and (exc := task.exception()) is not None:
            raise exc
    return FfmpegResult(returncode, tail.decode("utf-8", errors="replace").strip())


async def _kill_and_reap(
    proc: Child,
    feeder: asyncio.Task[None],
    reader: asyncio.Task[None],
    drainer: asyncio.Task[None],
) -> None:
    if proc.returncode is None:
        # The whole group: asyncio's wait() also waits for our pipes to close, and any
        # straggler in the group would hold them open (and keep running) indefinitely.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
    # Both normally finish by themselves once ffmpeg is gone (stdin reports the closed pipe,
    # stderr hits EOF), which lets the feeder close its source; only a source stuck in a read
    # (a stalled storage server) is cancelled.
    _, stuck = await asyncio.wait({feeder, reader, drainer}, timeout=2.0)
    for task in stuck:
        task.cancel()
    await asyncio.gather(feeder, reader, drainer, return_exceptions=True)


async def _feed(
    stdin_ready: asyncio.Future[asyncio.StreamWriter], source: AsyncIterable[bytes]
) -> None:
    chunks = aiter(source)
    # Read before ffmpeg's stdin exists: the first read waits on storage, ffmpeg on its start.
    first = await anext(chunks, None)
    stdin = await stdin_ready
    try:
        if first is not None:
            stdin.write(first)
            await stdin.drain()
            async for chunk in chunks:
                stdin.write(chunk)
                await stdin.drain()
        stdin.close()
        await stdin.wait_closed()
    except (BrokenPipeError, ConnectionResetError):
        # ffmpeg stops reading once it has decided the input is bad (or has been killed);
        # its exit status is what reports the failure.
        pass
    finally:
        stdin.close()


async def _drain(stdout: asyncio.StreamReader, output: OutputSink) -> None:
    while chunk := await stdout.read(256 * 1024):
        output(chunk)


async def _collect_tail(stream: asyncio.StreamReader, tail: bytearray) -> None:
    # Only the end is kept: ffmpeg repeats per-packet errors, and the last lines say why.
    while chunk := await stream.read(65536):
        tail += chunk
        if len(tail) > STDERR_TAIL:
            del tail[: len(tail) - STDERR_TAIL]
