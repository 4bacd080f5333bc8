"""The unit tier starts no server: a test here asking for one of the root conftest's server
fixtures is an error of collection, not a slow test."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent
SERVER_FIXTURES = frozenset(
    {
        "postgres",
        "s3",
        "settings",
        "server",
        "client",
        "account",
        "other_account",
        "ingest",
        "tenants",
        "scratch",
        "counting_ffmpeg",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            wanted = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            if wanted:
                raise pytest.UsageError(
                    f"{item.nodeid} is a unit test but uses {sorted(wanted)}: "
                    "move it to tests/integration"
                )
