-- Recording status callbacks (design section 10): an account's default target, its AuthToken
-- sealed under RECORDINGS_SECRET_KEY so the worker can sign, and the outbox the worker delivers.
ALTER TABLE accounts
    ADD COLUMN status_callback text,
    ADD COLUMN status_callback_method text NOT NULL DEFAULT 'POST'
        CONSTRAINT accounts_status_callback_method_check
        CHECK (status_callback_method IN ('POST', 'GET')),
    -- AES-256-GCM of the AuthToken (service/accounts/sealing.py), written when a token is made
    -- or rotated. NULL for tokens made before this migration, or without RECORDINGS_SECRET_KEY:
    -- those accounts' callbacks go out unsigned until `recordings accounts rotate-token`.
    ADD COLUMN token_sealed bytea;

-- One row per callback, written in the transaction that writes its recording's row, so a
-- committed recording always has its callback and a rolled-back one never does.
CREATE TABLE callbacks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The account's row goes with its callbacks (`recordings accounts delete`); the recording's
    -- may be forgotten by gc while its callback's history stays, so no key on it.
    account_sid     text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    recording_sid   text NOT NULL CHECK (recording_sid ~ '^RE[0-9a-f]{32}$'),
    url             text NOT NULL,
    method          text NOT NULL CHECK (method IN ('POST', 'GET')),
    -- The parameters as Twilio sends them, fixed at ingest: every attempt sends the same ones.
    params          jsonb NOT NULL,
    -- The ingest's request id, so every attempt's log line names the request that caused it.
    request_id      text,
    status          text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    -- When a pending callback is due; a claimed one is pushed past its attempt (a lease), so a
    -- worker killed mid-attempt leaves it to be claimed again once the lease runs out.
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease           uuid,
    -- Retryable failures are retried until then; the last attempt is made at this instant.
    give_up_at      timestamptz NOT NULL,
    last_status     integer,
    last_error      text,
    date_created    timestamptz NOT NULL DEFAULT now(),
    date_updated    timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz
);

-- The worker's claim: due pending callbacks, oldest due first; delivered rows are not in it.
CREATE INDEX callbacks_due ON callbacks (next_attempt_at) WHERE status = 'pending';
-- `recordings callbacks list --failed`.
CREATE INDEX callbacks_failed ON callbacks (id) WHERE status = 'failed';

-- Wake the workers as soon as a callback is committed (a new one, or one an operator retries);
-- NOTIFY is sent at commit, and the workers also poll, so a lost notification only delays.
CREATE FUNCTION callbacks_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('recordings_callbacks', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER callbacks_notify
    AFTER INSERT OR UPDATE OF status ON callbacks
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION callbacks_notify();
