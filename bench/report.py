"""Results: one row per figure, the final table, and a JSON copy."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

Goal = Literal["min", "max", ""]


@dataclass
class Row:
    """One figure: the service's, the baseline's measured in the same run, and their ratio."""

    bench: str
    name: str
    unit: str
    service: float | None
    baseline: float | None = None
    baseline_name: str = ""
    # "min": ratio must be >= target (throughput); "max": ratio must be <= target (time).
    goal: Goal = ""
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.service is None or not self.baseline:
            return None
        return self.service / self.baseline

    @property
    def met(self) -> bool | None:
        """Against the target: the ratio's, or the value's itself when there is no baseline."""
        value = self.ratio if self.baseline is not None else self.service
        if value is None or self.target is None or not self.goal:
            return None
        return value >= self.target if self.goal == "min" else value <= self.target


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        print(f"  {format_row(row)}", flush=True)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  {text}", flush=True)

    def section(self, title: str, text: str) -> None:
        """A block of text printed after the table (a profile summary, a latency table)."""
        self.sections.append((title, text))
        print(f"  ({title}: printed at the end)", flush=True)

    def save(self, path: Path, meta: dict[str, object]) -> None:
        rows = [{**asdict(r), "ratio": r.ratio, "met": r.met} for r in self.rows]
        document = {
            "meta": meta,
            "rows": rows,
            "notes": self.notes,
            "sections": [{"title": t, "text": x} for t, x in self.sections],
        }
        path.write_text(json.dumps(document, indent=2))


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def format_row(row: Row) -> str:
    base = f" vs {_num(row.baseline)} ({row.baseline_name})" if row.baseline is not None else ""
    ratio = f" ratio {row.ratio:.2f}" if row.ratio is not None else ""
    return f"[{row.bench}] {row.name}: {_num(row.service)} {row.unit}{base}{ratio}"


def print_table(report: Report, out: object = sys.stdout) -> None:
    headers = ("#", "benchmark", "service", "baseline", "unit", "ratio", "target", "")
    lines = []
    for r in report.rows:
        target = ""
        if r.target is not None and r.goal:
            target = (">= " if r.goal == "min" else "<= ") + f"{r.target:g}"
        verdict = {True: "met", False: "MISSED", None: ""}[r.met]
        name = r.name + (f" [vs {r.baseline_name}]" if r.baseline_name else "")
        lines.append(
            (
                r.bench,
                name,
                _num(r.service),
                _num(r.baseline),
                r.unit,
                f"{r.ratio:.2f}" if r.ratio is not None else "",
                target,
                verdict,
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    right = {2, 3, 5}

    def fmt(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    write = out.write  # type: ignore[attr-defined]
    write(fmt(headers) + "\n")
    write("  ".join("-" * w for w in widths) + "\n")
    for line in lines:
        write(fmt(line) + "\n")
    if report.notes:
        write("\nNotes:\n")
        for text in report.notes:
            write(f"- {text}\n")


def print_sections(report: Report, out: object = sys.stdout) -> None:
    write = out.write  # type: ignore[attr-defined]
    for title, text in report.sections:
        write(f"\n== {title}\n{text}\n")
