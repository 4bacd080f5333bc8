"""A page on another origin plays the MP3 and the WAV in headless Chromium, and seeks."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Response, sync_playwright

from devstack.demo import write_demo_wav
from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.settings import Settings
from tests.support.browser import launch
from tests.support.clients import Account, set_cors_origins, set_media_auth, uploaded_sid
from tests.support.stack import ServerThread, make_settings

# Long enough that the browser cannot have fetched the middle before it seeks there.
SECONDS = 600.0
PAGE = """<!doctype html><html><body><script>
async function probe(src) {
  const audio = new Audio();
  audio.crossOrigin = "anonymous";
  audio.preload = "metadata";
  audio.muted = true;
  audio.src = src;
  await new Promise((resolve, reject) => {
    audio.onloadedmetadata = resolve;
    audio.onerror = () => reject(new Error("media error " + (audio.error && audio.error.code)));
  });
  const duration = audio.duration;
  audio.currentTime = duration / 2;
  await new Promise((resolve) => { audio.onseeked = resolve; });
  const seekedTo = audio.currentTime;
  await audio.play();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const playedTo = audio.currentTime;
  audio.pause();
  return {duration, seekedTo, playedTo};
}
</script></body></html>"""


class PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page_origin() -> Iterator[str]:
    """The page's own origin: another host name and port than the API's."""
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), PageHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def api(postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Iterator[ServerThread]:
    with ServerThread(make_settings(postgres, s3)) as running:
        yield running


@pytest.mark.parametrize("suffix", [".mp3", ".wav"])
def test_chromium_plays_and_seeks(
    api: ServerThread, page_origin: str, account: Account, tmp_path: Path, suffix: str
) -> None:
    wav = write_demo_wav(tmp_path / "call.wav", SECONDS).read_bytes()
    with httpx.Client(base_url=api.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, wav)
    media_url = f"{api.base_url}{account.base}/{sid}{suffix}"
    statuses: list[tuple[int, str | None]] = []

    def seen(response: Response) -> None:
        if response.url == media_url:
            statuses.append((response.status, response.request.headers.get("range")))

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.on("response", seen)
            page.goto(page_origin + "/")
            result = page.evaluate("src => probe(src)", media_url)
        finally:
            browser.close()

    assert abs(result["duration"] - SECONDS) < 0.1, result
    assert abs(result["seekedTo"] - SECONDS / 2) < 0.5, result
    assert SECONDS / 2 < result["playedTo"] < SECONDS, result
    seeks = [
        rng for status, rng in statuses if status == 206 and rng and not rng.startswith("bytes=0-")
    ]
    assert seeks, f"the seek was not answered with a 206: {statuses}"


@pytest.mark.parametrize("listed", [True, False])
def test_credentialed_fetch_of_private_media_needs_a_listed_origin(
    api: ServerThread,
    page_origin: str,
    settings: Settings,
    account: Account,
    demo_wav: bytes,
    listed: bool,
) -> None:
    with httpx.Client(base_url=api.base_url, timeout=60) as http:
        sid = uploaded_sid(http, account, demo_wav)
    set_media_auth(settings.database_url, account.sid, True)
    set_cors_origins(
        settings.database_url, account.sid, [page_origin] if listed else ["https://other.example"]
    )
    media_url = f"{api.base_url}{account.base}/{sid}.wav"
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.goto(page_origin + "/")
            result = page.evaluate(
                """async ([url, auth]) => {
                    try {
                        const r = await fetch(url, {credentials: "include",
                                                    headers: {Authorization: auth}});
                        return {status: r.status, bytes: (await r.arrayBuffer()).byteLength};
                    } catch (e) { return {error: String(e)}; }
                }""",
                [media_url, account.basic_auth],
            )
        finally:
            browser.close()
    if listed:
        assert result.get("status") == 200 and result["bytes"] > 1000, result
    else:
        # The browser itself refuses: the answer does not name the page's origin.
        assert "error" in result, result
