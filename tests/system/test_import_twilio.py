"""`recordings import-twilio` against a Twilio-like source: a second instance of this service
behind an API host and a storage host that behave as Twilio's (tests/support/twilio_source.py).
Real PostgreSQL, S3 and `recordings` processes on both sides."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pty
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.servers import EmbeddedPostgres, EmbeddedS3, free_port
from service.settings import Settings
from service.sids import new_sid
from tests.support.clients import Account, new_account, upload
from tests.support.encryption import decrypt_verified, key_pair, register_key, use_key
from tests.support.faults import FaultProxy
from tests.support.imports import (
    KEPT,
    add_recordings,
    count_rows,
    import_twilio,
    leave_behind,
    listed,
    queued_jobs,
    summary_of,
    wav_of,
)
from tests.support.stack import (
    RECORDINGS,
    ServerThread,
    ensure_bucket,
    make_settings,
    recordings_env,
    run_recordings,
    running_postgres,
)
from tests.support.twilio_source import Faults, twilio_hosts
from tests.support.wavs import noise_wav


@pytest.fixture(scope="module")
def api_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def source(s3: EmbeddedS3, api_port: int) -> Iterator[ServerThread]:
    """The source service; its media_url points at the API host (as Twilio's does)."""
    with running_postgres() as postgres:
        settings = make_settings(
            postgres, s3, s3_bucket="import-source", public_url=f"http://127.0.0.1:{api_port}"
        )
        ensure_bucket(settings)
        with ServerThread(settings) as server:
            yield server


@pytest.fixture(scope="module")
def dest_postgres() -> Iterator[EmbeddedPostgres]:
    with running_postgres() as postgres:
        yield postgres


@pytest.fixture(scope="module")
def dest(dest_postgres: EmbeddedPostgres, s3: EmbeddedS3) -> Settings:
    settings = make_settings(dest_postgres, s3, s3_bucket="import-dest")
    ensure_bucket(settings)
    return settings


@pytest.fixture(scope="module")
def dest_server(dest: Settings) -> Iterator[ServerThread]:
    with ServerThread(dest) as server:
        yield server


@pytest.fixture(scope="module")
def storage_port() -> int:
    return free_port()


def hosts(
    source: ServerThread, api_port: int, storage_port: int, faults: Faults, **options: Any
) -> Any:
    return twilio_hosts(source.base_url, api_port, storage_port, faults, **options)


def test_import_keeps_every_sid_and_field_through_twilio_faults(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
) -> None:
    account = new_account(source.settings.database_url)
    mono = add_recordings(source, account, 6)
    conference = new_sid("CF")
    started = add_recordings(source, account, 1, StartTime="2024-05-01T09:59:58Z")
    # A conference recording of two channels: Twilio serves it as a mono mix unless asked.
    with httpx.Client(base_url=source.base_url, timeout=60) as http:
        stereo = [
            upload(
                http,
                account,
                noise_wav(8000, channels=2, seed=99),
                date_created="2024-06-01T00:00:00Z",
                query={"Source": "Conference", "ConferenceSid": conference},
            ).json()["sid"]
        ]
    processing = add_recordings(source, account, 1)[0]
    faults = Faults(
        # Three recordings a page: three pages; the second call is refused with 20429, the
        # fourth breaks off mid-page.
        list_faults={2: "429", 4: "reset"},
        statuses={processing: "processing"},
        prices={mono[0]: ("-0.0025", "USD"), stereo[0]: ("-0.0050", "USD")},
        cut_once={mono[1]},
    )
    with hosts(source, api_port, storage_port, faults) as api_url:
        result = import_twilio(dest, api_url, account, "--json", "--keep-auth-token")
        assert result.returncode == 0, result.stderr
        summary = summary_of(result)
        assert summary["copied"] == 8
        assert summary["skipped"] == 1
        assert summary["skipped_by_reason"] == {"processing": 1}
        assert summary["failed"] == []
        # Each Twilio behaviour was met, and survived.
        assert faults.served_429 == 1
        assert faults.served_resets == 1
        assert faults.served_cuts == 1
        assert faults.media_gets[mono[1]] == 2
        assert faults.auth_refused == 0
        assert faults.requested_channels[stereo[0]] == "2"
        assert faults.requested_channels[mono[0]] is None
        source_items = {item["sid"]: item for item in listed(api_url, account)}

        # The same fields, the same bytes, the same credentials (--keep-auth-token).
        copied = {item["sid"]: item for item in listed(dest_server.base_url, account)}
        assert set(copied) == set(source_items) - {processing}
        for sid, item in copied.items():
            assert {k: item[k] for k in KEPT} == {k: source_items[sid][k] for k in KEPT}
            assert wav_of(dest_server.base_url, account.sid, sid) == wav_of(
                source.base_url, account.sid, sid
            )
        assert copied[stereo[0]]["channels"] == 2
        assert copied[stereo[0]]["conference_sid"] == conference
        assert copied[started[0]]["start_time"] == "Wed, 01 May 2024 09:59:58 +0000"
        assert copied[mono[0]]["price"] == "-0.0025"

        # Run again: nothing fetched, nothing copied.
        before = sum(faults.media_gets.values())
        again = summary_of(import_twilio(dest, api_url, account, "--json"))
        assert again["copied"] == 0
        assert again["skipped_by_reason"] == {"already here": 8, "processing": 1}
        assert sum(faults.media_gets.values()) == before


def test_killed_import_reruns_to_exactly_once_with_no_orphan(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
    tmp_path: Path,
) -> None:
    account = new_account(source.settings.database_url)
    sids = add_recordings(source, account, 12)
    faults = Faults(page_size=5, media_delay=0.4)
    env = recordings_env(dest, TWILIO_ACCOUNT_SID=account.sid, TWILIO_AUTH_TOKEN=account.token)
    with hosts(source, api_port, storage_port, faults) as api_url:
        argv = [RECORDINGS, "import-twilio", "--api-url", api_url, "--concurrency", "2"]
        with (tmp_path / "first.log").open("wb") as log:
            first = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 90
            while count_rows(dest.database_url, account.sid) < 3:
                assert first.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "the first run copied nothing"
                time.sleep(0.05)
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=10)
        killed_at = count_rows(dest.database_url, account.sid)
        assert 3 <= killed_at < len(sids)

        second = summary_of(import_twilio(dest, api_url, account, "--json"))
        assert second["failed"] == []
        assert second["copied"] + second["skipped_by_reason"].get("already here", 0) == 12
        assert second["copied"] == 12 - killed_at
        assert count_rows(dest.database_url, account.sid) == 12
        for sid in sids:
            mine = wav_of(dest_server.base_url, account.sid, sid)
            theirs = wav_of(source.base_url, account.sid, sid)
            assert hashlib.sha256(mine).digest() == hashlib.sha256(theirs).digest()

        gc = run_recordings(dest, "gc", "--grace", "0")
        assert "removed 0 orphaned objects" in gc.stdout
        assert "aborted 0 unfinished uploads" in gc.stdout

        fetched = sum(faults.media_gets.values())
        third = summary_of(import_twilio(dest, api_url, account, "--json"))
        assert third["copied"] == 0
        assert third["skipped_by_reason"] == {"already here": 12}
        assert sum(faults.media_gets.values()) == fetched


def test_failures_dry_run_and_delete_source(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
) -> None:
    account = new_account(source.settings.database_url)
    sids = add_recordings(source, account, 3)
    faults = Faults(gone={sids[0]})
    with hosts(source, api_port, storage_port, faults) as api_url:
        refused = import_twilio(dest, api_url, account, "--delete-source")
        assert refused.returncode == 2
        assert "--yes" in refused.stderr

        dry = summary_of(import_twilio(dest, api_url, account, "--dry-run", "--json"))
        assert dry["copied"] == 2 and dry["bytes"] == 2 * len(noise_wav(8000))
        assert [f["sid"] for f in dry["failed"]] == [sids[0]]
        assert sum(faults.media_gets.values()) == 0
        assert faults.ranged_gets == 2
        assert count_rows(dest.database_url, account.sid) == 0

        failed = import_twilio(dest, api_url, account, "--json", "--delete-source", "--yes")
        assert failed.returncode == 1
        assert f"failed {sids[0]}: media: 404" in failed.stderr
        summary = summary_of(failed)
        assert summary["copied"] == 2
        assert summary["deleted_at_source"] == 2
        # Deleted at the source only once stored and verified here; the failed one stays.
        assert [item["sid"] for item in listed(source.base_url, account)] == [sids[0]]
        # The local account got a new AuthToken (no --keep-auth-token), printed once.
        created = re.search(r"created account (AC\w+), AuthToken: (\w+)", failed.stderr)
        assert created is not None and created[1] == account.sid
        assert created[2] != account.token
        here = Account(account.sid, created[2])
        assert {item["sid"] for item in listed(dest_server.base_url, here)} == set(sids[1:])


def test_accounts_create_keeps_a_sid_and_token(dest: Settings, dest_server: ServerThread) -> None:
    sid, token = new_sid("AC"), os.urandom(16).hex()
    made = run_recordings(dest, "accounts", "create", "--sid", sid, "--auth-token", token, "--json")
    assert json.loads(made.stdout) == {"account_sid": sid, "auth_token": token}
    response = httpx.get(
        f"{dest_server.base_url}/2010-04-01/Accounts/{sid}/Recordings.json", auth=(sid, token)
    )
    assert response.status_code == 200
    again = run_recordings(dest, "accounts", "create", "--sid", sid, check=False)
    assert again.returncode == 1
    assert "exists already" in again.stderr
    bad = run_recordings(dest, "accounts", "create", "--sid", "AC123", check=False)
    assert bad.returncode == 2


def test_derive_queues_mp3_and_peaks_and_without_it_nothing_is_queued(
    source: ServerThread, dest: Settings, api_port: int, storage_port: int
) -> None:
    lazy, eager = (new_account(source.settings.database_url) for _ in range(2))
    lazy_sids = add_recordings(source, lazy, 2)
    eager_sids = add_recordings(source, eager, 2)
    with hosts(source, api_port, storage_port, Faults()) as api_url:
        assert summary_of(import_twilio(dest, api_url, lazy, "--json"))["copied"] == 2
        assert summary_of(import_twilio(dest, api_url, eager, "--json", "--derive"))["copied"] == 2
    assert queued_jobs(dest.database_url, lazy_sids) == []
    assert queued_jobs(dest.database_url, eager_sids) == sorted(
        (entrypoint, sid)
        for sid in eager_sids
        for entrypoint in ("recordings.mp3", "recordings.peaks")
    )


def test_include_subaccounts_copies_each_into_an_account_of_its_sid(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
) -> None:
    parent, child = (new_account(source.settings.database_url) for _ in range(2))
    parent_sids = add_recordings(source, parent, 1)
    child_sids = add_recordings(source, child, 2)
    faults = Faults(parent=(parent.sid, parent.token), subaccounts={child.sid: child.token})
    with hosts(source, api_port, storage_port, faults) as api_url:
        result = import_twilio(
            dest, api_url, parent, "--json", "--include-subaccounts", "--keep-auth-token"
        )
    assert result.returncode == 0, result.stderr
    assert summary_of(result)["copied"] == 3
    # Each account here has its own SID and (--keep-auth-token) its own source token.
    assert {i["sid"] for i in listed(dest_server.base_url, parent)} == set(parent_sids)
    assert {i["sid"] for i in listed(dest_server.base_url, child)} == set(child_sids)


def test_what_a_killed_run_leaves_at_each_stage_is_mended_by_the_next(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
) -> None:
    account = new_account(source.settings.database_url)
    small = add_recordings(source, account, 1)[0]
    with httpx.Client(base_url=source.base_url, timeout=120) as http:
        # Ten minutes at 8 kHz: 9.6 MB, stored in parts.
        large = upload(http, account, noise_wav(8000 * 600, seed=5)).json()["sid"]
    leave_behind(dest, account.sid, small, large)
    with hosts(source, api_port, storage_port, Faults()) as api_url:
        summary = summary_of(import_twilio(dest, api_url, account, "--json"))
    assert summary["copied"] == 2 and summary["failed"] == []
    for sid in (small, large):
        assert wav_of(dest_server.base_url, account.sid, sid) == wav_of(
            source.base_url, account.sid, sid
        )
    gc = run_recordings(dest, "gc", "--grace", "0")
    assert "removed 0 orphaned objects" in gc.stdout
    assert "aborted 0 unfinished uploads" in gc.stdout


def test_connections_reset_mid_list_and_mid_media_are_asked_again(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
) -> None:
    """The same faults at the TCP level (tests/support/faults.py): an RST in the middle of the
    first list page, and one in the middle of a media transfer."""
    account = new_account(source.settings.database_url)
    sids = add_recordings(source, account, 4)
    faults = Faults()
    with (
        FaultProxy("127.0.0.1", storage_port) as storage_proxy,
        FaultProxy("127.0.0.1", api_port) as api_proxy,
    ):
        storage_url = f"http://127.0.0.1:{storage_proxy.port}"
        with hosts(source, api_port, storage_port, faults, storage_url=storage_url):
            # Page one (three recordings of JSON) is longer than 1,500 bytes; a media file
            # (one second at 8 kHz) than 8,000.
            api_proxy.cut_after(1500, once=True)
            storage_proxy.cut_after(8000, once=True)
            api_url = f"http://127.0.0.1:{api_proxy.port}"
            summary = summary_of(import_twilio(dest, api_url, account, "--json"))
    assert summary["copied"] == 4 and summary["failed"] == []
    assert api_proxy.cuts == 1 and storage_proxy.cuts == 1
    assert sum(faults.media_gets.values()) == 5
    for sid in sids:
        assert wav_of(dest_server.base_url, account.sid, sid) == wav_of(
            source.base_url, account.sid, sid
        )


def test_progress_is_drawn_on_a_terminal_only(
    source: ServerThread, dest: Settings, api_port: int, storage_port: int
) -> None:
    account = new_account(source.settings.database_url)
    add_recordings(source, account, 2)
    env = recordings_env(dest, TWILIO_ACCOUNT_SID=account.sid, TWILIO_AUTH_TOKEN=account.token)
    with hosts(source, api_port, storage_port, Faults()) as api_url:
        main, terminal = pty.openpty()
        try:
            result = subprocess.run(
                [RECORDINGS, "import-twilio", "--api-url", api_url, "--json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=terminal,
                stdin=subprocess.DEVNULL,
                timeout=120,
                check=False,
            )
            os.close(terminal)
            drawn = b""
            with contextlib.suppress(OSError):  # EIO once everything written is read
                while chunk := os.read(main, 65536):
                    drawn += chunk
        finally:
            os.close(main)
        # On a pipe (as in every other test here), stderr carries no progress.
        again = import_twilio(dest, api_url, account, "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["copied"] == 2
    assert b"\x1b[2K" in drawn and b"recordings/s" in drawn and b"MB/s" in drawn
    assert again.returncode == 0 and summary_of(again)["skipped"] == 2
    assert "recordings/s" not in again.stderr


def test_an_encrypted_recording_comes_over_as_its_ciphertext_and_details(
    source: ServerThread,
    dest: Settings,
    dest_server: ServerThread,
    api_port: int,
    storage_port: int,
) -> None:
    account = new_account(source.settings.database_url)
    private_pem, public_pem = key_pair()
    with httpx.Client(base_url=source.base_url, timeout=60) as http:
        key_sid = register_key(http, account, public_pem)
    use_key(source.settings.database_url, account.sid, key_sid)
    sids = add_recordings(source, account, 2)
    with hosts(source, api_port, storage_port, Faults()) as api_url:
        result = import_twilio(dest, api_url, account, "--json", "--keep-auth-token", "--derive")
        assert result.returncode == 0, result.stderr
        assert summary_of(result)["copied"] == 2
    at_source = {r["sid"]: r for r in listed(source.base_url, account)}
    here = {r["sid"]: r for r in listed(dest_server.base_url, account)}
    for sid in sids:
        details = here[sid]["encryption_details"]
        assert details is not None and details == at_source[sid]["encryption_details"]
        ciphertext = wav_of(dest_server.base_url, account.sid, sid)
        assert ciphertext == wav_of(source.base_url, account.sid, sid)
        # Only the private key's holder hears it, here as at the source.
        assert decrypt_verified(private_pem, details, ciphertext)[:4] == b"RIFF"
    # Nothing to transcode: --derive queues no job for ciphertext.
    assert queued_jobs(dest.database_url, sids) == []
