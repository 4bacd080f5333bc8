"""Numbered ``.sql`` migrations, applied by one replica at a time."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

# Any constant will do; it only has to be the same for every replica.
MIGRATION_LOCK_ID = 0x5245434F5244  # "RECORD"

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# A file starting with this line runs statement by statement, each in a transaction of its own
# (or in the file's explicit BEGIN ... COMMIT): CREATE INDEX CONCURRENTLY cannot run inside one,
# and a live table's locks are then held one short statement at a time.
OUTSIDE_TRANSACTION = "-- migrate: outside a transaction"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def in_transaction(self) -> bool:
        return not self.sql.startswith(OUTSIDE_TRANSACTION)


def split_statements(sql: str) -> list[str]:
    """The statements of a script, split at semicolons outside comments, quotes and $$ bodies."""
    statements: list[str] = []
    current: list[str] = []
    i, quote = 0, ""
    while i < len(sql):
        if quote:
            end = sql.find(quote, i)
            end = len(sql) if end < 0 else end + len(quote)
            current.append(sql[i:end])
            i, quote = end, ""
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
        elif sql.startswith("$$", i) or sql[i] == "'":
            quote = "$$" if sql[i] == "$" else "'"
            current.append(quote)
            i += len(quote)
        elif sql[i] == ";":
            statements.append("".join(current).strip())
            current = []
            i += 1
        else:
            current.append(sql[i])
            i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


def load_migrations() -> list[Migration]:
    """Every migration shipped in ``db/migrations``, in order."""
    found = []
    for entry in resources.files("db").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


async def apply_migrations(dsn: str) -> list[Migration]:
    """Apply what is missing; replicas racing here wait on an advisory lock."""
    conn = await asyncpg.connect(dsn)
    try:
        await take_migration_lock(conn)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            applied = []
            for migration in load_migrations():
                if migration.version in done:
                    continue
                if migration.in_transaction:
                    async with conn.transaction():
                        await conn.execute(migration.sql)
                        await _record(conn, migration)
                else:
                    # Each statement must be safe to run again: a failure part way through
                    # leaves the migration unrecorded, to be run again from its start.
                    for statement in split_statements(migration.sql):
                        await conn.execute(statement)
                    await _record(conn, migration)
                applied.append(migration)
            return applied
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    finally:
        await conn.close()


async def _record(conn: asyncpg.Connection, migration: Migration) -> None:
    await conn.execute(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
        migration.version,
        migration.name,
    )


async def take_migration_lock(conn: asyncpg.Connection) -> None:
    """Wait for the migration lock by polling, never in one long statement: a replica waiting
    in pg_advisory_lock would hold a snapshot that the holder's CREATE INDEX CONCURRENTLY waits
    for, while it waits for the holder (a deadlock PostgreSQL breaks by failing one of them)."""
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_ID):
            return
        await asyncio.sleep(0.2)
