"""An app that has its process to itself (`recordings serve`) hides what start-up made from the
garbage collector; an app among others (the tests, `recordings dev`) does not."""

from __future__ import annotations

import gc

import httpx

from service.app import create_app
from service.settings import Settings
from tests.support.stack import ServerThread


def test_only_an_app_with_a_process_of_its_own_freezes_what_start_up_made(
    settings: Settings, server: ServerThread
) -> None:
    # The shared test server, one app among others in this process, froze nothing.
    assert httpx.get(server.base_url + "/healthz").status_code == 200
    assert gc.get_freeze_count() == 0
    try:
        with ServerThread(settings, create_app(settings, own_process=True)) as own:
            assert httpx.get(own.base_url + "/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
