"""py-spy profiles of a server under load, summarised: where its CPU time goes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from bench.context import Context
from bench.stack import VENV_BIN

# Threads parked waiting for work are not CPU time, whatever py-spy makes of them.
_IDLE_LEAVES = ("Condition.wait (", "Event.wait (", "wait (threading", "_worker (")
_LOOP = "event loop itself (uvloop C code: epoll, socket I/O, httptools, protocol callbacks)"
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<path>.*?)(?::\d+)?\)$")

# A sample goes to the component of its innermost frame that matches one of these (in order of
# the stack, leaf first). py-spy's --nonblocking stacks of coroutines are often cut short above
# some frame, so "inclusive below the ASGI entry" would undercount; the leaf side is reliable.
_COMPONENTS: list[tuple[str, tuple[str, ...]]] = [
    ("access log (logging, JSON formatter)", ("logging/", "service/logs.py")),
    ("Prometheus metrics", ("prometheus_client/",)),
    (
        "FastAPI native telemetry (OpenTelemetry checks)",
        ("fastapi/telemetry", "opentelemetry/", "trace/"),
    ),
    ("asyncpg (queries, pool acquire/release/reset)", ("asyncpg/",)),
    ("S3 client (aiobotocore, botocore, aiohttp)", ("aiobotocore/", "botocore/", "aiohttp/")),
    ("uvicorn HTTP protocol (parse, send)", ("uvicorn/protocols", "service/server.py")),
    ("representations (XML, dates)", ("service/representations.py", "email/utils.py")),
    ("FastAPI dependencies and parameters", ("fastapi/dependencies",)),
    ("routing (Starlette/FastAPI)", ("starlette/routing.py", "fastapi/routing.py")),
    ("responses (Starlette)", ("starlette/responses.py",)),
    (
        "middleware stack",
        (
            "starlette/middleware",
            "fastapi/middleware",
            "fastapi/_body_limit",
            "starlette/_exception_handler",
            "service/compat.py",
            "service/observability.py",
            "uvicorn/middleware",
            "fastapi/applications.py",
            "starlette/applications.py",
        ),
    ),
    ("service and db code", ("service/", "db/", "storage/")),
    ("baseline app code", ("bench/",)),
    ("anyio", ("anyio/",)),
    ("asyncio (tasks, futures)", ("asyncio/",)),
]


def _component(frames: list[tuple[str, str]]) -> str:
    for func, path in reversed(frames):
        if func.startswith(("Runner.run", "run_forever")):
            return _LOOP
        for name, prefixes in _COMPONENTS:
            if path.startswith(prefixes):
                return name
    return "other"


def summarize_profile(raw: Path, top: int = 12) -> str:
    """CPU samples by component and the top functions by self time (py-spy raw format)."""
    self_func: Counter[str] = Counter()
    components: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame.strip())
            frames.append((match["func"], match["path"]) if match else (frame.strip(), ""))
        if not frames:
            continue
        func, path = frames[-1]
        leaf = f"{func} ({path})"
        if leaf.startswith(_IDLE_LEAVES):
            idle += count
            continue
        total += count
        self_func[_LOOP if func.startswith(("Runner.run", "run_forever")) else leaf] += count
        components[_component(frames)] += count
    if not total:
        return "(no samples)"

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    lines = [f"{total} samples on CPU ({idle} of idle worker threads left out). By component:"]
    lines += [f"  {pct(n)}  {name}" for name, n in components.most_common()]
    lines.append("Self time, top functions:")
    lines += [f"  {pct(n)}  {name}" for name, n in self_func.most_common(top)]
    return "\n".join(lines)


def py_spy() -> str | None:
    local = VENV_BIN / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def profile_while(ctx: Context, pid: int, name: str, load_once: Callable[[], object]) -> str:
    """Record ``pid`` with py-spy while ``load_once`` runs over and over; the summary."""
    spy = py_spy()
    if spy is None:
        return "(py-spy not installed: .venv/bin/pip install py-spy)"
    raw = ctx.out / f"profile-{name}.txt"
    seconds = ctx.sizes.profile_seconds
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                load_once()
            except Exception as exc:
                failures.append(exc)
                return

    loader = threading.Thread(target=loop, daemon=True)
    loader.start()
    time.sleep(1.0)
    try:
        subprocess.run(
            [
                spy,
                "record",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                f"{seconds:.0f}",
                "-p",
                str(pid),
                "-f",
                "raw",
                "-o",
                str(raw),
            ],
            capture_output=True,
            check=True,
            timeout=seconds + 60,
        )
    finally:
        stop.set()
        loader.join()
    if failures:
        raise RuntimeError(f"load under profiling failed: {failures[0]!r}")
    return f"py-spy record -r 200 --nonblocking, {seconds:.0f} s; raw stacks in {raw}\n" + (
        summarize_profile(raw)
    )


if __name__ == "__main__":
    # Summarise a raw profile again: python -m bench.profiles FILE
    print(summarize_profile(Path(sys.argv[1])))
