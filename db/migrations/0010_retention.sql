-- Retention (design section 13): an account's own policy, in whole days; NULL follows
-- RECORDINGS_RETENTION_DAYS (itself unset: keep forever).
ALTER TABLE accounts
    ADD COLUMN retention_days integer
        CONSTRAINT accounts_retention_days_check CHECK (retention_days > 0);

-- No new index on recordings: a pass looks for "this account's live rows created before the
-- cutoff, oldest first", which is a backward range scan of recordings_account_listing
-- (account_sid, date_created DESC, sid DESC) WHERE deleted_at IS NULL. It starts at the oldest
-- row and stops at the cutoff, so it never reads the live rows a policy keeps; tombstoned rows
-- leave that partial index, so a resumed pass does not walk what it already did.

-- When a scheduled pass last started, so that replicas (each with its own timer) run one pass
-- per interval between them. One row; a pass claims it under an advisory lock.
CREATE TABLE retention_schedule (
    singleton       boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_started_at timestamptz,
    last_finished_at timestamptz
);
INSERT INTO retention_schedule (singleton) VALUES (true);
