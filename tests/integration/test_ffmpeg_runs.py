"""run_ffmpeg with a streamed source, on the real ffmpeg: the first read overlaps the spawn, and
a source that fails, first read or later, ends the run with its error and no process left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

import service.audio.ffmpeg as ffmpeg_module
from devstack.demo import write_demo_wav
from service.audio.ffmpeg import run_ffmpeg
from service.mp3.transcoder import mp3_args, mp3_format
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
