"""Watching processes during a measurement: CPU time per server, the service's RSS, ffmpeg runs."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.stack import ROOT


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live descendants and its reaped children."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total
    except psutil.Error:
        return 0.0


@dataclass
class Watch:
    """What happened to the watched processes between start and stop."""

    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)  # seconds of CPU per process group
    rss_idle: int = 0
    rss_peak: int = 0
    rss_samples: int = 0

    def cpu_text(self) -> str:
        """CPU use in % of one core over the window, e.g. ``service 98% s3 61% client 35%``."""
        if self.wall <= 0:
            return ""
        shares = {name: 100 * sec / self.wall for name, sec in self.cpu.items()}
        return " ".join(f"{name} {pct:.0f}%" for name, pct in shares.items() if pct >= 0.5)


class Monitor:
    """CPU time of server process groups over a window; ``rss_pid``'s RSS sampled on a thread.

    The sampler only reads /proc/PID/statm (microseconds): anything heavier, such as scanning
    /proc for child processes every few milliseconds, takes a share of the two cores from the
    very processes being measured.
    """

    def __init__(
        self, groups: Mapping[str, int], rss_pid: int | None = None, interval: float = 0.02
    ) -> None:
        self.groups = dict(groups)
        self.rss_pid = rss_pid
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._before: dict[str, float] = {}
        self._before_children = 0.0
        self._started = 0.0
        self.result = Watch()

    def _sample(self, proc: psutil.Process) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                rss = proc.memory_info().rss
                self.result.rss_peak = max(self.result.rss_peak, rss)
                self.result.rss_samples += 1
            self._stop.wait(self.interval)

    def start(self) -> None:
        if self.rss_pid:
            proc = psutil.Process(self.rss_pid)
            self.result.rss_idle = proc.memory_info().rss
            self._thread = threading.Thread(target=self._sample, args=(proc,), daemon=True)
        self._before = {name: _cpu_seconds(pid) for name, pid in self.groups.items()}
        self._before_children = _children_cpu()
        self._started = time.perf_counter()
        if self._thread is not None:
            self._thread.start()

    def stop(self) -> Watch:
        result = self.result
        result.wall = time.perf_counter() - self._started
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for name, pid in self.groups.items():
            result.cpu[name] = max(_cpu_seconds(pid) - self._before[name], 0.0)
        # Processes this one ran and reaped meanwhile (wrk); bench.client reports its own.
        children = _children_cpu() - self._before_children
        if children > 0.005:
            result.cpu["client"] = children
        return result

    @contextlib.contextmanager
    def watch(self) -> Iterator[Watch]:
        self.start()
        try:
            yield self.result
        finally:
            self.stop()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_client(
    spec: Mapping[str, Any], monitor: Monitor | None = None, timeout: float = 900.0
) -> dict[str, Any]:
    """Run ``bench.client`` in its own process and return what it printed.

    The client sets up (imports, connection pools, warm-up), says READY and waits for GO, so
    ``monitor`` watches exactly the measured window, not the client's start-up.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.client", json.dumps(spec)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        ready = proc.stdout.readline()
        if ready.strip() != b"READY":
            proc.wait(timeout=30)
            err = proc.stderr.read().decode()[-3000:]
            raise RuntimeError(f"bench.client did not start ({proc.returncode}): {err}")
        if monitor is not None:
            monitor.start()
        proc.stdin.write(b"GO\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        watch = monitor.stop() if monitor is not None else None
        proc.wait(timeout=timeout)
        err = proc.stderr.read().decode()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0 or not line:
        raise RuntimeError(f"bench.client failed ({proc.returncode}): {err[-3000:]}")
    answer: dict[str, Any] = json.loads(line)
    if watch is not None and "cpu" in answer:
        watch.cpu["client"] = answer["cpu"]
    return answer
