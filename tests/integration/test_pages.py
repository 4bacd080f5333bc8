"""The pages over HTTP: which routes take which paths, the access rules, the list's filters and
paging, escaping of everything echoed, and the headers that keep scripts to the service's own."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import httpx
import pytest

from service.faces.pages.rendering import CONTENT_SECURITY_POLICY
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, new_account, set_media_auth, uploaded_sid
from tests.support.peaks import stretches_wav

VERSIONS = ("2008-08-01", "2010-04-01")
XSS = [
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "'><svg/onload=alert(1)>",
    "javascript:alert(1)",
    "</textarea><script>alert(1)</script>",
]


URL_ATTRIBUTES = {"href", "src", "action", "data-url", "data-mp3", "data-wav", "data-peaks"}


class Markup(HTMLParser):
    """What a page's markup holds that could run script."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.inline_styles: list[str] = []
        self.script_bodies: list[str] = []
        self.styles = 0
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        self.inline_styles += [tag for name, _ in attrs if name == "style"]
        self.urls += [v or "" for name, v in attrs if name in URL_ATTRIBUTES]
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.styles += 1

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_bodies.append(data)


def markup(text: str) -> Markup:
    parser = Markup()
    parser.feed(text)
    return parser


def assert_page(response: httpx.Response, status: int = 200) -> Markup:
    """An HTML page under the CSP, holding no script but the service's own files."""
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    found = markup(response.text)
    assert found.handlers == [] and found.inline_styles == [] and found.styles == 0
    assert found.script_bodies == []
    for script in found.scripts:
        assert (script.get("src") or "").startswith("/pages/static/"), script
    return found


def base(version: str, account: Account) -> str:
    return f"/{version}/Accounts/{account.sid}/Recordings"


def test_the_csp_allows_only_the_services_own_scripts() -> None:
    directives = dict(d.strip().split(" ", 1) for d in CONTENT_SECURITY_POLICY.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("version", VERSIONS)
def test_the_pages_paths_are_the_pages_and_the_apis_stay_the_apis(
    client: httpx.Client, account: Account, demo_wav: bytes, version: str
) -> None:
    sid = uploaded_sid(client, account, demo_wav)
    recordings = base(version, account)
    page = assert_page(client.get(f"{recordings}/{sid}.html"))
    assert {s["src"].split("?")[0] for s in page.scripts if s["src"]} == {
        "/pages/static/waveform.js",
        "/pages/static/recording.js",
    }
    assert_page(client.get(f"{recordings}.html", auth=account.auth))
    assert client.get(f"{recordings}/{sid}/Peaks.json").headers["content-type"] == (
        "application/json"
    )
    # The API faces' own routes still answer theirs.
    assert client.get(f"{recordings}/{sid}.wav").headers["content-type"] == "audio/x-wav"
    assert client.get(f"{recordings}/{sid}").headers["content-type"] == "audio/x-wav"
    listed = client.get(f"{recordings}.json", auth=account.auth)
    assert listed.status_code == 200 and sid in listed.text
    # Suffixes that are neither stay 404s of the API faces, not pages.
    for path in (f"{recordings}/{sid}.htm", f"{recordings}.htm", f"{recordings}/{sid}/Peaks.xml"):
        missing = client.get(path, auth=account.auth)
        assert missing.status_code == 404
        assert "text/html" not in missing.headers["content-type"]
    # A page is no deletable resource: DELETE of a page's path falls to the API face's 404.
    assert client.delete(f"{recordings}/{sid}.html", auth=account.auth).status_code == 404
    assert client.get(f"{recordings}/{sid}.json").status_code in (200, 401)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_instance_page_shows_the_recording(
    client: httpx.Client, account: Account, demo_wav: bytes, version: str
) -> None:
    call = new_sid("CA")
    sid = uploaded_sid(
        client, account, demo_wav, call_sid=call, date_created="2026-11-27T10:11:12Z"
    )
    recordings = base(version, account)
    text = client.get(f"{recordings}/{sid}.html", auth=account.auth).text
    for expected in (
        sid,
        call,
        "2026-11-27 10:11:12 UTC",
        "0:03",
        "mono, 8000 Hz",
        f'<source src="{recordings}/{sid}.mp3" type="audio/mpeg">',
        f'<source src="{recordings}/{sid}.wav" type="audio/wav">',
        f'href="{recordings}/{sid}.wav" download="{sid}.wav"',
        f'href="{recordings}/{sid}.mp3" download="{sid}.mp3"',
        f'data-peaks="{recordings}/{sid}/Peaks.json"',
        f'href="{recordings}.html"',
    ):
        assert expected in text, expected


@pytest.mark.parametrize("version", VERSIONS)
def test_a_public_page_shows_without_credentials_only_what_the_public_api_does(
    client: httpx.Client,
    account: Account,
    other_account: Account,
    demo_wav: bytes,
    version: str,
) -> None:
    conference = new_sid("CF")
    sid = uploaded_sid(
        client,
        account,
        demo_wav,
        query={
            "ConferenceSid": conference,
            "StartTime": "2026-11-27T09:08:07Z",
            "Source": "StartConferenceRecordingAPI",
        },
    )
    path = f"{base(version, account)}/{sid}.html"
    # What the public 2008 representation gives (sid, account, call, duration, dates) ...
    public = client.get(f"/2008-08-01/Accounts/{account.sid}/Recordings/{sid}.json").json()
    hidden = (
        conference,
        "ConferenceSid",
        "09:08:07",
        "Started",
        "Source",
        "StartConferenceRecordingAPI",
        "8000 Hz",
        "mono",
    )
    for credentials in (None, other_account.auth):
        page = client.get(path, auth=credentials)
        assert_page(page)
        for shown in (sid, public["account_sid"], public["call_sid"]):
            assert shown in page.text
        # ... and nothing more, without the account's own credentials.
        for secret in hidden:
            assert secret not in page.text, (credentials, secret)
    owner = client.get(path, auth=account.auth)
    assert_page(owner)
    for detail in hidden:
        assert detail in owner.text, detail


def test_the_instance_page_has_the_medias_access_rule(
    client: httpx.Client, account: Account, other_account: Account, settings: Settings
) -> None:
    good = uploaded_sid(client, account, _tone())
    set_media_auth(settings.database_url, account.sid, True)
    for version in VERSIONS:
        path = f"{base(version, account)}/{good}.html"
        refused = client.get(path)
        assert_page(refused, 401)
        assert refused.headers["www-authenticate"] == 'Basic realm="Recordings"'
        assert_page(client.get(path, auth=other_account.auth), 403)
        assert_page(client.get(path, auth=account.auth))
        missing = client.get(path.replace(good, new_sid("RE")), auth=account.auth)
        assert_page(missing, 404)


def _tone() -> bytes:
    return stretches_wav([(1, [8000])])[0]


@pytest.mark.parametrize("version", VERSIONS)
def test_the_list_needs_the_accounts_credentials(
    client: httpx.Client, account: Account, other_account: Account, version: str
) -> None:
    path = f"{base(version, account)}.html"
    refused = client.get(path)
    assert_page(refused, 401)
    assert refused.headers["www-authenticate"] == 'Basic realm="Recordings"'
    assert_page(client.get(path, auth=(account.sid, "wrong")), 401)
    assert_page(client.get(path, auth=other_account.auth), 403)


def rows_of(text: str) -> list[str]:
    return re.findall(r'<tr data-sid="(RE[0-9a-f]{32})">', text)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_list_filters_and_pages_newest_first(
    client: httpx.Client, settings: Settings, version: str
) -> None:
    account = new_account(settings.database_url)
    call = new_sid("CA")
    days = ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"]
    sids = {
        day: uploaded_sid(
            client,
            account,
            _tone(),
            call_sid=call if day in days[1:3] else None,
            date_created=f"{day}T12:00:00Z",
        )
        for day in days
    }
    newest_first = [sids[d] for d in reversed(days)]
    path = f"{base(version, account)}.html"
    whole = client.get(path, auth=account.auth)
    assert_page(whole)
    assert rows_of(whole.text) == newest_first
    first = client.get(path, params={"PageSize": "2"}, auth=account.auth)
    assert rows_of(first.text) == newest_first[:2]
    assert '1\u20132 of <span id="total">5</span>' in first.text
    assert "Page 1 of 3" in first.text
    next_url = html.unescape(re.search(r'href="([^"]+)" id="page-next"', first.text)[1])
    second = client.get(next_url, auth=account.auth)
    assert rows_of(second.text) == newest_first[2:4]
    assert 'id="page-previous"' in second.text
    last = client.get(path, params={"PageSize": "2", "Page": "2"}, auth=account.auth)
    assert rows_of(last.text) == newest_first[4:]
    assert 'id="page-next"' not in last.text
    assert client.get(path, params={"Page": "9"}, auth=account.auth).status_code == 404

    by_call = client.get(path, params={"CallSid": call}, auth=account.auth)
    assert rows_of(by_call.text) == [sids["2026-11-03"], sids["2026-11-02"]]
    assert f'value="{call}"' in by_call.text
    # The form's own encoding of its date fields, and the API's raw one, read the same.
    ranged = client.get(
        f"{path}?CallSid=&DateCreated%3E=2026-11-02&DateCreated%3C=2026-11-04",
        auth=account.auth,
    )
    assert rows_of(ranged.text) == [sids["2026-11-04"], sids["2026-11-03"], sids["2026-11-02"]]
    raw = client.get(f"{path}?DateCreated>=2026-11-04&PageSize=1", auth=account.auth)
    assert rows_of(raw.text) == [sids["2026-11-05"]]
    assert "DateCreated%3E=2026-11-04" in html.unescape(raw.text)  # kept by the pager
    none = client.get(path, params={"CallSid": new_sid("CA")}, auth=account.auth)
    assert rows_of(none.text) == [] and "No recordings match these filters." in none.text
    # Each row links to its page, plays its media in place and deletes through its API.
    row = newest_first[0]
    suffix = ".json" if version == "2010-04-01" else ""
    assert f'data-url="{base(version, account)}/{row}{suffix}"' in whole.text
    assert f'data-mp3="{base(version, account)}/{row}.mp3"' in whole.text
    assert f'href="{base(version, account)}/{row}.html"' in whole.text


@pytest.mark.parametrize(
    "query",
    [
        "CallSid=CA123",
        "DateCreated%3E=2026-13-01",
        "DateCreated%3C=yesterday",
        "Page=-1",
        "PageSize=0",
        "PageSize=1001",
    ],
)
def test_a_malformed_filter_is_a_400_page_that_keeps_the_form(
    client: httpx.Client, account: Account, query: str
) -> None:
    response = client.get(f"{base('2008-08-01', account)}.html?{query}", auth=account.auth)
    assert_page(response, 400)
    assert 'id="query-error"' in response.text
    assert 'id="filter-apply"' in response.text
    assert rows_of(response.text) == []


@pytest.mark.parametrize("payload", XSS)
def test_everything_echoed_is_escaped(
    client: httpx.Client, settings: Settings, payload: str
) -> None:
    account = new_account(settings.database_url, name=payload)
    sid = uploaded_sid(client, account, _tone())
    listed = client.get(f"{base('2010-04-01', account)}.html", auth=account.auth)
    assert_page(listed)
    # Shown as text: the name reads back whole once the markup's escapes are undone.
    shown = re.search(r'<span id="account-name">([^<]*)</span>', listed.text)
    assert shown is not None and html.unescape(shown[1]) == payload
    echoes = [
        client.get(
            f"{base('2008-08-01', account)}.html",
            params={"CallSid": payload, "DateCreated>": payload, "PageSize": payload},
            auth=account.auth,
        ),
        client.get(
            f"{base('2008-08-01', account)}.html",
            params={"DateCreated<": payload},
            auth=account.auth,
        ),
        client.get(
            f"{base('2008-08-01', account)}.html", params={"Page": payload}, auth=account.auth
        ),
        client.get(f"/2008-08-01/Accounts/{account.sid}/Recordings/{payload}.html"),
        client.get(f"/2010-04-01/Accounts/{payload}/Recordings.html", auth=account.auth),
        client.get(f"/2010-04-01/Accounts/{account.sid}/Recordings/{sid}.html"),
    ]
    for response in [listed, *echoes]:
        # A payload with a "/" makes a path no page has: the API face's 404, not HTML.
        if response.headers["content-type"].startswith("text/html"):
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
        found = markup(response.text)
        assert found.handlers == [] and found.script_bodies == []
        # Every address a page holds is one of the service's own paths.
        assert all(url.startswith("/") for url in found.urls), found.urls
        if set(payload) & set("<>\"'"):
            assert payload not in response.text, response.text[:800]
        assert "Traceback" not in response.text and response.status_code < 500


def test_static_files_are_the_services_own(client: httpx.Client) -> None:
    for name, kind in (
        ("pages.css", "text/css"),
        ("waveform.js", "text/javascript"),
        ("recording.js", "text/javascript"),
        ("recordings.js", "text/javascript"),
    ):
        response = client.get(f"/pages/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(kind)
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert b"http://" not in response.content and b"https://" not in response.content
    for name in ("../rendering.py", "..%2Frendering.py", "recording.html", "nope.js"):
        assert client.get(f"/pages/static/{name}").status_code == 404
