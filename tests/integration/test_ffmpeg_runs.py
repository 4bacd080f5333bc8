"""run_ffmpeg with a streamed source, on the real ffmpeg: the first read overlaps the spawn, and
a source that fails, first read or later, ends the run with its error and no process left; the
children's pipes, on both event loops, are closed once and never leak."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

import service.audio.ffmpeg as ffmpeg_module
from devstack.demo import write_demo_wav
from service.audio.ffmpeg import run_ffmpeg
from service.audio.spawn import spawn
from service.mp3.commands import mp3_args, mp3_format
from service.settings import Settings
from storage.errors import StorageUnavailable
from tests.support.ffmpeg import ffmpeg_children

Runner = Callable[[Coroutine[Any, Any, Any]], Any]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Runner:
    """The event loop the service runs on (uvloop), and asyncio's own."""
    return uvloop.run if request.param == "uvloop" else asyncio.run


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return write_demo_wav(tmp_path_factory.mktemp("runs") / "in.wav", 30.0).read_bytes()


def args(tmp_path: Path) -> list[str]:
    return mp3_args(Settings().ffmpeg_path, tmp_path / "out.mp3", mp3_format(8000, 1))


async def chunks(
    data: bytes, events: list[str], *, fail_at: int | None = None
) -> AsyncIterator[bytes]:
    for number, start in enumerate(range(0, len(data), 65536)):
        events.append(f"read {number}")
        await asyncio.sleep(0.01)  # a storage round trip
        if number == fail_at:
            raise StorageUnavailable("connection reset by storage")
        yield data[start : start + 65536]


def test_the_first_read_is_under_way_before_ffmpeg_is_spawned(
    run: Runner, wav: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[str] = []
    real = ffmpeg_module.spawn

    async def spawn(*a: Any, **k: Any) -> Any:
        events.append("spawn")
        return await real(*a, **k)

    monkeypatch.setattr(ffmpeg_module, "spawn", spawn)
    result = run(run_ffmpeg(args(tmp_path), chunks(wav, events), timeout=60))
    assert result.ok, result.stderr
    assert events.index("read 0") < events.index("spawn")
    assert (tmp_path / "out.mp3").stat().st_size > 10_000


@pytest.mark.parametrize("fail_at", [0, 2])
def test_a_source_that_fails_ends_the_run_with_its_error(
    run: Runner, wav: bytes, tmp_path: Path, fail_at: int
) -> None:
    events: list[str] = []
    with pytest.raises(StorageUnavailable):
        # A run left waiting on its stdin would instead end at the timeout, with no error.
        asyncio.run(run_ffmpeg(args(tmp_path), chunks(wav, events, fail_at=fail_at), timeout=60))
    assert f"read {fail_at}" in events
    assert ffmpeg_children() == []


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_childs_pipes_are_closed_once_while_other_threads_open_files(run: Runner) -> None:
    """Upload spooling opens files on worker threads while children come and go. A pipe closed
    twice (once by the event loop, once through a file object) closes whatever another thread
    opened in between: its writes then fail with EBADF. 200 children, four threads opening,
    writing and closing files meanwhile: no error anywhere, and no descriptor left behind."""
    scratch = Path(os.environ.get("TMPDIR", "/tmp")) / f"fds-{os.getpid()}"
    errors: list[OSError] = []
    stop = threading.Event()

    def churn() -> None:
        while not stop.is_set():
            try:
                fd = os.open(scratch, os.O_WRONLY | os.O_CREAT, 0o600)
                os.write(fd, b"x" * 16)
                os.close(fd)
            except OSError as exc:
                errors.append(exc)

    async def children() -> None:
        for _ in range(200):
            child = await spawn(
                ["/bin/true"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={}
            )
            assert child.stdin is not None and child.stdout is not None
            child.stdin.close()
            await child.stdout.read()
            await child.stderr.read()
            assert await child.wait() == 0

    before = _open_fds()
    threads = [threading.Thread(target=churn) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        run(children())
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        scratch.unlink(missing_ok=True)
    assert errors == []
    assert _open_fds() <= before + 2  # the loop's own descriptors come and go with it
