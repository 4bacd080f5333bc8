-- Idempotent ingest: the first answer to an (account, Idempotency-Key) pair, replayed to retries
-- for a day. A row is 'running' while its first request works; its answer is kept once done.
CREATE TABLE ingest_keys (
    account_sid  text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    key          text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    body_sha256  bytea NOT NULL,
    state        text NOT NULL CHECK (state IN ('running', 'done')),
    status       integer,
    content_type text,
    body         bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_sid, key)
);
CREATE INDEX ingest_keys_age ON ingest_keys (created_at);

-- Origins whose pages may read this account's private media with credentials (CORS).
ALTER TABLE accounts ADD COLUMN cors_origins text[] NOT NULL DEFAULT '{}';
