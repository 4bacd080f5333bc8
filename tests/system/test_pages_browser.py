"""The pages in Chromium: the player draws the waveform, seeks where it is clicked, moves its
play-head while playing and answers the keyboard; the list logs in, filters, pages, plays a row
and deletes one; media auth asks for credentials; nothing injected runs."""

from __future__ import annotations

import concurrent.futures
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from service.settings import Settings
from service.sids import new_sid
from tests.support.browser import launch, screenshot
from tests.support.clients import Account, new_account, set_media_auth, uploaded_sid
from tests.support.peaks import stretches_wav
from tests.support.rows import insert_raw_recording
from tests.support.stack import ServerThread

SECONDS = 600
VIEWPORT = {"width": 1280, "height": 820}


@pytest.fixture
def browser() -> Iterator[Browser]:
    # Function-scoped and asked for last: Playwright's sync API runs an event loop in this
    # thread, so the fixtures' asyncio.run() calls must come before it, and the tests' after it
    # go through off_loop().
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


T = TypeVar("T")


def off_loop(work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``work`` in a thread of its own, where asyncio.run() may start a loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args, **kwargs).result()


def call_wav(seconds: int, *, seed: int = 1) -> bytes:
    """A call's worth of talk and pauses: turns of 4 to 14 s, each a burst of syllables of
    varying loudness, with a second or two of line noise between them."""
    rng = random.Random(seed)
    stretches: list[tuple[float, list[int]]] = []
    total = 0.0
    while total < seconds:
        loud = rng.choice((9000, 14000, 22000))
        turn = rng.uniform(4, 14)
        end = min(total + turn, seconds)
        while total < end:
            step = min(rng.choice((0.12, 0.2, 0.3)), end - total)
            stretches.append((step, [int(loud * rng.uniform(0.15, 1.0))]))
            total += step
        pause = min(rng.uniform(0.8, 2.5), seconds - total)
        if pause > 0:
            stretches.append((pause, [rng.choice((200, 400))]))
            total += pause
    return stretches_wav(stretches)[0]


def canvas_columns(page: Page) -> dict[str, Any]:
    """How many of the canvas's columns are painted, and how many distinct heights they have."""
    return page.evaluate(
        """() => {
          const c = document.getElementById("waveform");
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          const heights = [];
          for (let x = 0; x < c.width; x++) {
            let h = 0;
            for (let y = 0; y < c.height; y++) if (d[4 * (y * c.width + x) + 3] > 0) h++;
            heights.push(h);
          }
          return {width: c.width, painted: heights.filter(h => h > 0).length,
                  distinct: new Set(heights).size, tallest: Math.max(...heights),
                  height: c.height};
        }"""
    )


def audio_state(page: Page) -> dict[str, Any]:
    return page.evaluate(
        """() => { const a = document.getElementById("audio");
                   return {time: a.currentTime, paused: a.paused, duration: a.duration,
                           src: a.currentSrc}; }"""
    )


def playhead_x(page: Page) -> float:
    box = page.locator("#playhead").bounding_box()
    assert box is not None
    return box["x"]


def assert_asks_for_credentials(browser: Browser, url: str) -> None:
    """Without credentials the page is a 401 Basic challenge: the prompt a person would see,
    which headless Chromium, having nothing to answer, turns into a failed navigation."""
    context = browser.new_context()
    try:
        page = context.new_page()
        seen: list[tuple[int, str | None]] = []
        page.on("response", lambda r: seen.append((r.status, r.headers.get("www-authenticate"))))
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            page.goto(url)
        assert seen == [(401, 'Basic realm="Recordings"')]
    finally:
        context.close()


def wait_for(page: Page, predicate: str, timeout: float = 20_000) -> None:
    # As a function: Playwright polls a bare expression with eval(), which the pages' CSP
    # (rightly) refuses.
    page.wait_for_function(f"() => ({predicate})", timeout=timeout)


def test_the_player_draws_seeks_plays_and_answers_the_keyboard(
    server: ServerThread, account: Account, browser: Browser, tmp_path: Path
) -> None:
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        sid = uploaded_sid(http, account, call_wav(SECONDS), date_created="2026-11-27T09:30:00Z")
    url = f"{server.base_url}{account.base}/{sid}.html"
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on(
        "response",
        lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    try:
        response = page.goto(url)
        assert response is not None and response.status == 200
        wait_for(page, "document.getElementById('wave').dataset.drawn === 'true'")
        # Drawn: most columns painted, silent and loud stretches at different heights.
        columns = canvas_columns(page)
        assert columns["painted"] > 0.9 * columns["width"], columns
        assert columns["distinct"] >= 3, columns
        assert columns["tallest"] > 0.5 * columns["height"], columns

        wave = page.locator("#wave")
        box = wave.bounding_box()
        assert box is not None
        wave.click(position={"x": box["width"] / 2, "y": box["height"] / 2})
        wait_for(page, "document.getElementById('audio').readyState >= 1")
        wait_for(page, "Math.abs(document.getElementById('audio').currentTime - 300) < 12")
        state = audio_state(page)
        assert abs(state["duration"] - SECONDS) < 1, state
        assert abs(state["time"] - SECONDS / 2) <= 0.02 * SECONDS, state
        # The play-head stands where the click was.
        assert abs(playhead_x(page) - (box["x"] + box["width"] / 2)) < 0.02 * box["width"]

        page.keyboard.press("Space")
        wait_for(page, "!document.getElementById('audio').paused")
        before_x, before_t = playhead_x(page), audio_state(page)["time"]
        page.wait_for_timeout(2500)
        after_x, after = playhead_x(page), audio_state(page)
        assert after["time"] > before_t + 1, (before_t, after)
        assert after_x > before_x, "the play-head moves while playing"
        assert page.locator("#play").inner_text() == "Pause"
        screenshot(page, tmp_path, "recording-page.png")
        page.keyboard.press("Space")
        wait_for(page, "document.getElementById('audio').paused")

        at = audio_state(page)["time"]
        page.keyboard.press("ArrowRight")
        wait_for(page, f"Math.abs(document.getElementById('audio').currentTime - {at + 5}) < 0.5")
        page.keyboard.press("Shift+ArrowLeft")
        wait_for(page, f"Math.abs(document.getElementById('audio').currentTime - {at - 25}) < 0.5")
        page.keyboard.press("Home")
        wait_for(page, "document.getElementById('audio').currentTime < 0.5")

        # Dragging seeks all along the way.
        page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + 40)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + 40, steps=8)
        page.mouse.up()
        wait_for(page, "Math.abs(document.getElementById('audio').currentTime - 450) < 12")

        links = {
            page.locator(f"a[download='{sid}.{kind}']").get_attribute("href"): kind
            for kind in ("wav", "mp3")
        }
        assert links == {f"{account.base}/{sid}.wav": "wav", f"{account.base}/{sid}.mp3": "mp3"}
        assert problems == []
    finally:
        context.close()


def test_the_list_logs_in_filters_pages_plays_and_deletes(
    server: ServerThread, settings: Settings, browser: Browser, tmp_path: Path
) -> None:
    account = off_loop(new_account, settings.database_url, name="Acme Support")
    support_call = new_sid("CA")
    made = []
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        for day, seconds, call in [
            ("2026-11-20T08:15:00Z", 45, None),
            ("2026-11-21T10:02:00Z", 130, support_call),
            ("2026-11-22T14:40:00Z", 20, support_call),
            ("2026-11-23T09:05:00Z", 75, None),
            ("2026-11-24T16:30:00Z", 240, None),
            ("2026-11-25T11:11:00Z", 12, None),
        ]:
            made.append(
                uploaded_sid(http, account, call_wav(seconds), call_sid=call, date_created=day)
            )
    newest_first = list(reversed(made))
    base = f"{server.base_url}/2010-04-01/Accounts/{account.sid}/Recordings"
    assert_asks_for_credentials(browser, f"{base}.html")

    context = browser.new_context(
        viewport=VIEWPORT, http_credentials={"username": account.sid, "password": account.token}
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        response = page.goto(f"{base}.html?PageSize=4")
        assert response is not None and response.status == 200

        def shown() -> list[str]:
            return page.locator("#recordings tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.sid)"
            )

        assert shown() == newest_first[:4]
        assert page.locator("#account-name").inner_text() == "Acme Support"

        # Play the second row in place.
        row = page.locator(f"tr[data-sid='{newest_first[1]}']")
        row.locator("button.play").click()
        wait_for(
            page,
            f"Number(document.querySelector(\"tr[data-sid='{newest_first[1]}']\").dataset.position || 0) > 0.5",
        )
        assert row.locator("button.play").inner_text() == "Pause"
        assert "playing" in (row.get_attribute("class") or "")
        screenshot(page, tmp_path, "recordings-page.png")
        row.locator("button.play").click()

        page.locator("#page-next").click()
        page.wait_for_load_state()
        assert shown() == newest_first[4:]
        assert "Page 2 of 2" in page.locator(".pager").inner_text()
        page.locator("#page-previous").click()
        page.wait_for_load_state()
        assert shown() == newest_first[:4]

        # The filters: a call, then a date range.
        page.fill("#filter-call", support_call)
        page.click("#filter-apply")
        page.wait_for_load_state()
        assert shown() == [made[2], made[1]]
        page.fill("#filter-call", "")
        page.fill("#filter-from", "2026-11-21")
        page.fill("#filter-to", "2026-11-23")
        page.click("#filter-apply")
        page.wait_for_load_state()
        assert shown() == [made[3], made[2], made[1]]

        # Delete: dismissing the confirmation deletes nothing; accepting it deletes the row.
        victim = made[3]
        page.once("dialog", lambda dialog: dialog.dismiss())
        page.locator(f"tr[data-sid='{victim}'] button.delete").click()
        page.wait_for_timeout(500)
        assert victim in shown()
        messages: list[str] = []

        def accept(dialog: Any) -> None:
            messages.append(dialog.message)
            dialog.accept()

        page.once("dialog", accept)
        page.locator(f"tr[data-sid='{victim}'] button.delete").click()
        wait_for(page, f"!document.querySelector(\"tr[data-sid='{victim}']\")")
        assert victim in messages[0]
        assert page.locator("#status").inner_text() == f"Deleted {victim}."
        assert shown() == [made[2], made[1]]
        page.reload()
        assert shown() == [made[2], made[1]]
        assert problems == []
    finally:
        context.close()
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        gone = http.get(
            f"/2010-04-01/Accounts/{account.sid}/Recordings/{victim}.json", auth=account.auth
        )
        assert gone.status_code == 404


def test_media_auth_pages_ask_for_credentials(
    server: ServerThread, settings: Settings, browser: Browser, tmp_path: Path
) -> None:
    account = off_loop(new_account, settings.database_url)
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        sid = uploaded_sid(http, account, call_wav(30))
    off_loop(set_media_auth, settings.database_url, account.sid, True)
    url = f"{server.base_url}/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.html"
    assert_asks_for_credentials(browser, url)
    context = browser.new_context(
        http_credentials={"username": account.sid, "password": account.token}
    )
    page = context.new_page()
    try:
        answer = page.goto(url)
        assert answer is not None and answer.status == 200
        # The waveform's and the audio's own requests carry the credentials too.
        wait_for(page, "document.getElementById('wave').dataset.drawn === 'true'")
        page.locator("#play").click()
        wait_for(page, "document.getElementById('audio').currentTime > 0.5")
    finally:
        context.close()


def test_nothing_injected_runs(
    server: ServerThread, settings: Settings, browser: Browser, tmp_path: Path
) -> None:
    payload = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'
    account = off_loop(new_account, settings.database_url, name=payload)
    with httpx.Client(base_url=server.base_url, timeout=120) as http:
        uploaded_sid(http, account, call_wav(5))
    context = browser.new_context(
        viewport=VIEWPORT, http_credentials={"username": account.sid, "password": account.token}
    )
    page = context.new_page()
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    try:
        base = f"{server.base_url}/2008-08-01/Accounts/{account.sid}/Recordings.html"
        page.goto(base)
        assert page.locator("#account-name").inner_text() == payload
        page.goto(f"{base}?CallSid=%22%3E%3Cscript%3Ewindow.__xss%3D3%3C%2Fscript%3E")
        assert "window.__xss=3" in page.locator("#query-error").inner_text()
        assert page.evaluate("window.__xss") is None
        # Were the escaping ever to miss, the CSP still refuses inline script and handlers.
        page.evaluate(
            """() => {
              document.body.insertAdjacentHTML("beforeend", '<img src="/nope" onerror="window.__xss=4">');
              const s = document.createElement("script");
              s.textContent = "window.__xss = 5";
              document.body.appendChild(s);
            }"""
        )
        page.wait_for_timeout(500)
        assert page.evaluate("window.__xss") is None
        assert violations, "Chromium reports the refused inline code"
    finally:
        context.close()


def test_undecodable_audio_is_said_on_the_page(
    server: ServerThread, account: Account, settings: Settings, browser: Browser
) -> None:
    garbage = b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(256)) * 40
    sid = off_loop(insert_raw_recording, settings, account.sid, garbage, 30)
    context = browser.new_context()
    page = context.new_page()
    try:
        answer = page.goto(f"{server.base_url}{account.base}/{sid}.html")
        assert answer is not None and answer.status == 200
        wait_for(page, "document.getElementById('wave').dataset.drawn === 'failed'")
        assert "could not be decoded" in page.locator("#wave-note").inner_text()
    finally:
        context.close()
    peaks = httpx.get(f"{server.base_url}{account.base}/{sid}/Peaks.json", timeout=30)
    assert peaks.status_code == 422
