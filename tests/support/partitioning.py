"""`recordings` hash-partitioned by account_sid: the layout a distributed PostgreSQL (Citus, by
account) imposes. PostgreSQL refuses a unique key of a partitioned table that leaves out the
partition key, as Citus refuses one without the distribution column; the suite runs on it with
TESTS_RECORDINGS_PARTITIONED=1."""

from __future__ import annotations

import asyncpg

PARTITIONS = 4


async def partition_recordings(dsn: str, partitions: int = PARTITIONS) -> None:
    """Remake the (empty, migrated) ``recordings`` table as a partitioned one, with the same
    columns, indexes, keys, foreign keys from and to it, and triggers."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            referencing = await conn.fetch(
                "SELECT conname, conrelid::regclass::text AS tab, pg_get_constraintdef(oid) AS def"
                " FROM pg_constraint WHERE contype = 'f' AND confrelid = 'recordings'::regclass"
            )
            outgoing = await conn.fetch(
                "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
                " WHERE contype = 'f' AND conrelid = 'recordings'::regclass"
            )
            # Captured while they still name `recordings`, to be made again under their names.
            indexes = await conn.fetch(
                "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def,"
                " con.conname, pg_get_constraintdef(con.oid) AS condef FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid LEFT JOIN pg_constraint con"
                " ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u')"
                " WHERE i.indrelid = 'recordings'::regclass"
            )
            triggers = await conn.fetch(
                "SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger"
                " WHERE tgrelid = 'recordings'::regclass AND NOT tgisinternal"
            )
            for ref in referencing:
                await conn.execute(f'ALTER TABLE {ref["tab"]} DROP CONSTRAINT "{ref["conname"]}"')
            await conn.execute("ALTER TABLE recordings RENAME TO recordings_unpartitioned")
            for index in indexes:
                await conn.execute(f'ALTER INDEX "{index["name"]}" RENAME TO "{index["name"]}_old"')
            await conn.execute(
                "CREATE TABLE recordings"
                " (LIKE recordings_unpartitioned INCLUDING ALL EXCLUDING INDEXES)"
                " PARTITION BY HASH (account_sid)"
            )
            for i in range(partitions):
                await conn.execute(
                    f"CREATE TABLE recordings_{i} PARTITION OF recordings"
                    f" FOR VALUES WITH (MODULUS {partitions}, REMAINDER {i})"
                )
            await conn.execute("DROP TABLE recordings_unpartitioned")
            # A unique key without account_sid fails here, as Citus would refuse it.
            for index in indexes:
                if index["conname"]:
                    await conn.execute(
                        f'ALTER TABLE recordings ADD CONSTRAINT "{index["conname"]}"'
                        f" {index['condef']}"
                    )
                else:
                    await conn.execute(index["def"])
            for fk in outgoing:
                await conn.execute(
                    f'ALTER TABLE recordings ADD CONSTRAINT "{fk["conname"]}" {fk["def"]}'
                )
            for ref in referencing:
                await conn.execute(
                    f'ALTER TABLE {ref["tab"]} ADD CONSTRAINT "{ref["conname"]}" {ref["def"]}'
                )
            for trigger in triggers:
                await conn.execute(trigger["def"])
    finally:
        await conn.close()


async def is_partitioned(dsn: str) -> bool:
    """Whether ``recordings`` is a partitioned table here."""
    conn = await asyncpg.connect(dsn)
    try:
        kind = await conn.fetchval(
            "SELECT relkind::text FROM pg_class WHERE relname = 'recordings'"
        )
        return bool(kind == "p")
    finally:
        await conn.close()
