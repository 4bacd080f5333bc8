"""Debian's Chromium under Playwright, launched as this sandbox allows (no browser download)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--mute-audio",
    "--autoplay-policy=no-user-gesture-required",
]
# Where the documentation's screenshots are written when set (RECORDINGS_SCREENSHOTS=docs/screenshots,
# shown on docs/pages.md);
# each test's own tmp_path gets them always.
SCREENSHOTS_ENV = "RECORDINGS_SCREENSHOTS"


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)


def screenshot(page: Page, tmp_path: Path, name: str) -> Path:
    """A full-page PNG in the test's directory, and in the documentation's when asked for."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    docs = os.environ.get(SCREENSHOTS_ENV)
    if docs:
        Path(docs).mkdir(parents=True, exist_ok=True)
        (Path(docs) / name).write_bytes(path.read_bytes())
    return path
