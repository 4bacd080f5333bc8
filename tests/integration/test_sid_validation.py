"""SIDs are validated before any storage key is built: look-alike, traversing and padded SIDs
are 404s that send not one byte to storage or the database (counted by recording proxies)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3
from service.settings import Settings
from tests.support.clients import Account, new_account, uploaded_sid
from tests.support.faults import FaultProxy
from tests.support.rawhttp import raw_request
from tests.support.stack import ServerThread, make_settings


@dataclass(frozen=True)
class Probed:
    server: ServerThread
    s3: FaultProxy
    db: FaultProxy
    account: Account
    sid: str
    wav: bytes


@pytest.fixture(scope="module")
def probed(
    postgres: EmbeddedPostgres, s3: EmbeddedS3, settings: Settings, demo_wav: bytes
) -> Iterator[Probed]:
    """A service whose S3 and PostgreSQL traffic goes through counting proxies."""
    with (
        FaultProxy.for_url(s3.endpoint_url, record=True) as s3_proxy,
        FaultProxy.for_url(postgres.dsn, record=True) as db_proxy,
    ):
        watched = make_settings(
            postgres,
            s3,
            s3_endpoint_url=s3_proxy.rewrite(s3.endpoint_url),
            database_url=db_proxy.rewrite(postgres.dsn),
        )
        account = new_account(settings.database_url)
        with ServerThread(watched) as running:
            with httpx.Client(base_url=running.base_url, timeout=60) as http:
                sid = uploaded_sid(http, account, demo_wav)
            yield Probed(running, s3_proxy, db_proxy, account, sid, demo_wav)


def test_the_probes_see_a_real_media_request(probed: Probed) -> None:
    s3_mark, db_mark = probed.s3.bytes_to_upstream, probed.db.bytes_to_upstream
    got = raw_request(probed.server.base_url, "GET", f"{probed.account.base}/{probed.sid}.wav")
    assert got is not None and got.status == 200 and got.body == probed.wav
    assert any(probed.sid in line for line in probed.s3.http_requests_since(s3_mark))
    assert probed.db.bytes_to_upstream > db_mark


def _odd_names(sid: str) -> list[str]:
    hexpart = sid[2:]
    arabic = "".join("٠١٢٣٤٥٦٧٨٩"[int(c, 16) % 10] for c in hexpart)
    fullwidth = "".join(chr(0xFF10 + int(c, 16) % 10) for c in hexpart)
    return [
        "..%2F..%2Fetc%2Fpasswd",
        "..%2F..%2F",
        f"..%2F{sid}",
        f"..%2F..%2F..%2Frecordings-tests%2F{{account}}%2F{sid}.wav",
        f"{sid}%2F..%2F{sid}",
        "RE" + hexpart[:15] + "%2F" + hexpart[16:],
        "RE" + hexpart[:15] + "/" + hexpart[16:],
        "RE" + quote(arabic),
        "RE" + quote(fullwidth),
        "RE" + hexpart.upper(),
        "re" + hexpart,
        "Re" + hexpart,
        sid[:-1],  # 33 characters
        sid + "0",  # 35 characters
        sid + "00",
        sid + "%00",
        sid[:20] + "%00" + sid[21:],
        "%00" + sid,
        sid + "%0A",
        sid + "%0D%0A",
        sid[:20] + "%0A" + sid[21:],
        sid + "%20",
        "%20" + sid,
        sid + "%09",
        sid + ".wav%00.mp3",
        sid + "%00.wav",
        "RE" + hexpart[:31] + "%C0%AF",
        quote("RE" + hexpart[:31] + "\u0660"),
    ]


def _odd_sid_targets(probed: Probed) -> list[str]:
    account = probed.account.sid
    names = [n.replace("{account}", account) for n in _odd_names(probed.sid)]
    base = probed.account.base
    targets = []
    for name in names:
        targets += [f"{base}/{name}", f"{base}/{name}.wav", f"{base}/{name}.mp3"]
    targets.append(f"{base}/{names[0]}.json")
    # The account's half of the key is checked too.
    for odd in (account.upper(), account[:-1], account + "%00", account + "%0A", "..%2F" + account):
        targets += [
            f"/2008-08-01/Accounts/{odd}/Recordings/{probed.sid}",
            f"/2008-08-01/Accounts/{odd}/Recordings/{probed.sid}.mp3",
        ]
    return targets


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_odd_sids_are_404_and_touch_neither_storage_nor_database(
    probed: Probed, method: str
) -> None:
    for target in _odd_sid_targets(probed):
        s3_mark, db_mark = probed.s3.bytes_to_upstream, probed.db.bytes_to_upstream
        got = raw_request(probed.server.base_url, method, target)
        assert got is not None, target
        assert got.status == 404, (target, got.status, got.body[:200])
        assert probed.s3.bytes_to_upstream == s3_mark, (
            target,
            probed.s3.http_requests_since(s3_mark),
        )
        assert probed.db.bytes_to_upstream == db_mark, (target, probed.db.sent_since(db_mark)[:200])
        assert got.body[:4] != b"RIFF" and probed.wav[44:1044] not in got.body


def test_odd_sids_on_delete_are_refused_without_storage_requests(probed: Probed) -> None:
    auth = [("Authorization", probed.account.basic_auth)]
    for target in _odd_sid_targets(probed):
        s3_mark = probed.s3.bytes_to_upstream
        got = raw_request(probed.server.base_url, "DELETE", target, auth)
        assert got is not None, target
        # 403 when the odd part is the path's AccountSid (the credentials are not for it).
        assert got.status in (403, 404), (target, got.status)
        assert probed.s3.bytes_to_upstream == s3_mark, (
            target,
            probed.s3.http_requests_since(s3_mark),
        )
    # Nothing was deleted.
    still = raw_request(probed.server.base_url, "GET", f"{probed.account.base}/{probed.sid}")
    assert still is not None and still.status == 200 and still.body == probed.wav
