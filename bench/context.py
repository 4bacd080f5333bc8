"""What every benchmark gets: the running stack and servers, sizes, and the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.report import Report
from bench.stack import ServerProcess, Stack


@dataclass(frozen=True)
class Sizes:
    minute_seconds: int
    hour_seconds: int
    big_seconds: int
    streams: int
    repeats: int  # single-stream runs per target (median)
    repeats_many: int  # runs of all streams at once per target (median)
    cold_repeats: dict[str, int]
    total_rows: int
    account_rows: int
    other_accounts: int
    load_seconds: float  # wrk duration per measurement
    latency_seconds: float  # per list filter
    profile_seconds: float


FULL = Sizes(
    minute_seconds=60,
    hour_seconds=3600,  # 57.6 MB at 8 kHz, 16-bit, mono
    big_seconds=12_500,  # 200 MB
    streams=64,
    repeats=5,
    repeats_many=3,
    cold_repeats={"minute": 15, "hour": 3},
    total_rows=10_000_000,
    account_rows=1_000_000,
    other_accounts=1000,
    load_seconds=10.0,
    latency_seconds=8.0,
    profile_seconds=10.0,
)

QUICK = Sizes(
    minute_seconds=60,
    hour_seconds=300,  # 4.8 MB
    big_seconds=1250,  # 20 MB
    streams=64,
    repeats=2,
    repeats_many=1,
    cold_repeats={"minute": 2, "hour": 2},
    total_rows=200_000,
    account_rows=20_000,
    other_accounts=100,
    load_seconds=3.0,
    latency_seconds=2.0,
    profile_seconds=3.0,
)


@dataclass
class Context:
    stack: Stack
    service: ServerProcess
    baseline: ServerProcess
    sizes: Sizes
    report: Report
    out: Path
    chunk_bytes: int
    use_wrk: bool = True  # when installed; else bench.client's Python load generator
    peaks: dict[str, int] = field(default_factory=dict)  # the service's peak RSS per figure

    def groups(self) -> dict[str, int]:
        """The server processes whose CPU time is reported, by name."""
        groups = {"service": self.service.pid, "baseline": self.baseline.pid}
        groups["s3"] = self.stack.s3.pid or 0
        groups["pg"] = self.stack.postgres.pid or 0
        return {name: pid for name, pid in groups.items() if pid}
