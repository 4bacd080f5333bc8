CREATE TABLE accounts (
    sid                 text PRIMARY KEY CHECK (sid ~ '^AC[0-9a-f]{32}$'),
    friendly_name       text NOT NULL DEFAULT '',
    token_salt          bytea NOT NULL,
    token_hash          bytea NOT NULL,
    enforce_media_auth  boolean NOT NULL DEFAULT false,
    date_created        timestamptz NOT NULL DEFAULT now(),
    date_updated        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE recordings (
    sid             text PRIMARY KEY CHECK (sid ~ '^RE[0-9a-f]{32}$'),
    account_sid     text NOT NULL REFERENCES accounts (sid),
    call_sid        text NOT NULL CHECK (call_sid ~ '^CA[0-9a-f]{32}$'),
    duration        integer NOT NULL CHECK (duration >= 0),
    date_created    timestamptz NOT NULL,
    date_updated    timestamptz NOT NULL,
    sample_rate     integer NOT NULL,
    channels        smallint NOT NULL,
    wav_key         text NOT NULL,
    wav_size        bigint NOT NULL CHECK (wav_size >= 0),
    wav_etag        text NOT NULL,
    mp3_key         text,
    mp3_size        bigint,
    mp3_etag        text,
    mp3_error       text,
    deleted_at      timestamptz
);

-- Every list query is "one account, newest first", optionally one call: these two indexes serve
-- the first page, deep pages and the DateCreated bounds with an index range scan.
CREATE INDEX recordings_account_listing
    ON recordings (account_sid, date_created DESC, sid DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX recordings_account_call_listing
    ON recordings (account_sid, call_sid, date_created DESC, sid DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX recordings_tombstones
    ON recordings (deleted_at)
    WHERE deleted_at IS NOT NULL;
