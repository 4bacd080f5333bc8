"""An encrypted recording's pages in Chromium: they say so, draw no waveform and play nothing,
run without a script error, and the download they offer is the ciphertext the key's holder
decrypts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, sync_playwright

from service.settings import Settings
from tests.support.browser import launch, screenshot
from tests.support.clients import Account, new_account, uploaded_sid
from tests.support.encryption import decrypt_verified, key_pair, register_key, use_key
from tests.support.stack import ServerThread


@pytest.fixture
def encrypted_recording(
    server: ServerThread, settings: Settings, demo_wav: bytes
) -> tuple[Account, str, str]:
    """An account that encrypts, one recording of it, and the key's SID (made before the
    browser: Playwright's sync API then holds this thread's event loop)."""
    account = new_account(settings.database_url)
    _, public_pem = key_pair()
    with httpx.Client(base_url=server.base_url, timeout=60) as http:
        key_sid = register_key(http, account, public_pem, "pages")
        use_key(settings.database_url, account.sid, key_sid)
        sid = uploaded_sid(http, account, demo_wav)
    return account, sid, key_sid


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


def test_the_pages_of_an_encrypted_recording(
    server: ServerThread,
    demo_wav: bytes,
    encrypted_recording: tuple[Account, str, str],
    browser: Browser,
    tmp_path: Path,
) -> None:
    account, sid, key_sid = encrypted_recording
    private_pem, _ = key_pair()
    context = browser.new_context(
        viewport={"width": 1280, "height": 720},
        http_credentials={"username": account.sid, "password": account.token},
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        base = f"{server.base_url}/2010-04-01/Accounts/{account.sid}/Recordings"
        answer = page.goto(f"{base}/{sid}.html")
        assert answer is not None and answer.status == 200
        assert "This recording is encrypted" in page.locator("#encrypted").inner_text()
        assert key_sid in page.locator("#encrypted").inner_text()
        assert page.locator("audio").count() == 0
        assert page.locator("canvas").count() == 0
        link = page.locator("#download-encrypted")
        assert link.get_attribute("download") == f"{sid}.wav.enc"
        href = link.get_attribute("href")
        assert href is not None
        screenshot(page, tmp_path, "encrypted-recording.png")

        answer = page.goto(f"{base}.html")
        assert answer is not None and answer.status == 200
        row = page.locator(f"tr[data-sid='{sid}']")
        assert row.locator("span.encrypted").inner_text() == "Encrypted"
        assert row.locator("button.play").count() == 0
        assert row.locator("a", has_text="MP3").count() == 0
        page.wait_for_timeout(300)
    finally:
        context.close()
    assert errors == []
    details = httpx.get(f"{base}/{sid}.json", auth=account.auth, timeout=30).json()
    ciphertext = httpx.get(f"{server.base_url}{href}", timeout=30).content
    assert decrypt_verified(private_pem, details["encryption_details"], ciphertext) == demo_wav
