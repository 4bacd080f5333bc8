-- A date-filtered list's `total` from per-account, per-UTC-day counters kept by triggers,
-- beside migration 0004's live total: a range is a sum over its whole days plus exact counts
-- of the partial days at its edges (db/recordings.py, count_recordings), instead of a count(*)
-- over every matching row (80 ms for half of a 1,000,000-recording account).
CREATE TABLE recording_day_counts (
    account_sid text NOT NULL REFERENCES accounts (sid),
    day         date NOT NULL,
    live        bigint NOT NULL CHECK (live >= 0),
    PRIMARY KEY (account_sid, day)
);

-- Writers wait from here to the commit, so the counts below miss no row and count none twice.
LOCK TABLE recordings IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION recordings_count_days() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- An UPDATE that moves a live row to another day or account (or revives or buries it) is
    -- its old row's removal and its new row's arrival.
    IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.deleted_at IS NULL THEN
        -- The row was counted when it arrived, so its day's counter exists.
        UPDATE recording_day_counts SET live = live - 1
        WHERE account_sid = OLD.account_sid
          AND day = (OLD.date_created AT TIME ZONE 'UTC')::date;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.deleted_at IS NULL THEN
        INSERT INTO recording_day_counts AS c (account_sid, day, live)
        VALUES (NEW.account_sid, (NEW.date_created AT TIME ZONE 'UTC')::date, 1)
        ON CONFLICT (account_sid, day) DO UPDATE SET live = c.live + 1;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER recordings_count_days
    AFTER INSERT OR DELETE OR UPDATE OF deleted_at, date_created, account_sid ON recordings
    FOR EACH ROW EXECUTE FUNCTION recordings_count_days();

INSERT INTO recording_day_counts (account_sid, day, live)
SELECT account_sid, (date_created AT TIME ZONE 'UTC')::date, count(*)
FROM recordings WHERE deleted_at IS NULL GROUP BY 1, 2;
