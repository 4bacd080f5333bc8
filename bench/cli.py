"""``python -m bench.cli``: how long the `recordings` command takes to start, against Python's own.

Each command runs ``--runs`` times in a fresh process; the figure is the median wall time, and the
ratio is against ``python -c pass`` measured in the same run (the interpreter's own start-up is
the floor no command can go under). ``import service.app`` shows what a command that loaded the
web app, as every command once did, would cost.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

RECORDINGS = str(Path(sys.executable).parent / "recordings")
TARGET_SECONDS = 0.5


def median_seconds(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cli", description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    floor = median_seconds([sys.executable, "-c", "pass"], args.runs)
    rows = [
        ("recordings --help", [RECORDINGS, "--help"]),
        ("recordings --version", [RECORDINGS, "--version"]),
        ("recordings accounts --help", [RECORDINGS, "accounts", "--help"]),
        ("python -c 'import service.app'", [sys.executable, "-c", "import service.app"]),
    ]
    print(f"{'command':<34} {'median s':>9} {'x python':>9}  target")
    print(f"{'python -c pass':<34} {floor:>9.3f} {1.0:>9.2f}")
    for name, command in rows:
        seconds = median_seconds(command, args.runs)
        target = ""
        if name.startswith("recordings"):
            target = f"< {TARGET_SECONDS} s " + ("met" if seconds < TARGET_SECONDS else "MISSED")
        print(f"{name:<34} {seconds:>9.3f} {seconds / floor:>9.2f}  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
