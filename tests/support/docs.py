"""The documentation site's sources (mkdocs.yml, docs/) and the README, read as the tests check
them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MKDOCS_YML = ROOT / "mkdocs.yml"
DOCS = ROOT / "docs"
SETTINGS_PAGE = DOCS / "operations" / "settings.md"
CLI_PAGE = DOCS / "operations" / "cli.md"


def pages() -> list[Path]:
    """Every Markdown page of the site."""
    return sorted(DOCS.rglob("*.md"))


def documentation() -> str:
    """The site's pages and the README, as one text: where a user may read about a thing."""
    return "\n".join(p.read_text() for p in [README, *pages()])


def mkdocs_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(MKDOCS_YML.read_text())
    return config


def nav_pages(nav: list[Any] | None = None) -> Iterator[str]:
    """The page paths (relative to docs/) that the navigation lists."""
    for entry in mkdocs_config()["nav"] if nav is None else nav:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            if isinstance(value, list):
                yield from nav_pages(value)
            else:
                yield str(value)


def table_variables(markdown: str) -> list[str]:
    """The ``RECORDINGS_*`` names in the first column of a page's tables."""
    return re.findall(r"^\| `(RECORDINGS_[A-Z0-9_]+)` \|", markdown, flags=re.MULTILINE)


def variables(markdown: str) -> set[str]:
    """Every ``RECORDINGS_*`` name a text mentions."""
    return set(re.findall(r"\bRECORDINGS_[A-Z0-9_]*[A-Z0-9]\b", markdown))
