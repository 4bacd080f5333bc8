"""Splitting a migration that runs outside a transaction into its statements."""

from __future__ import annotations

from db.migrations import load_migrations, split_statements


def test_statements_split_at_semicolons_outside_bodies_quotes_and_comments() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "CREATE INDEX CONCURRENTLY a ON t (x);\n"
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN NEW.y := 'a;b'; RETURN NEW; END;\n"
        "$$;\n"
        "UPDATE t SET y = 'it''s; fine';\n"
    )
    assert split_statements(sql) == [
        "CREATE INDEX CONCURRENTLY a ON t (x)",
        "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN NEW.y := 'a;b'; RETURN NEW; END;\n$$",
        "UPDATE t SET y = 'it''s; fine'",
    ]


def test_the_shard_ready_keys_run_outside_a_transaction() -> None:
    # CREATE INDEX CONCURRENTLY is refused inside one.
    by_version = {m.version: m for m in load_migrations()}
    assert not by_version[13].in_transaction
    assert all(m.in_transaction for m in by_version.values() if m.version != 13)
    for statement in split_statements(by_version[13].sql):
        if statement.startswith("CREATE") and "CONCURRENTLY" in statement:
            assert statement.startswith("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS")
