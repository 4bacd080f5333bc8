-- migrate: outside a transaction
-- Shard-ready keys (design section 17): every per-account table's primary key leads with
-- account_sid, and the peaks' key to their recording carries the account, so that the schema can
-- be distributed by account_sid (Citus) or partitioned by it as it is.
--
-- Safe on a live table of millions of rows: the new unique indexes are built CONCURRENTLY (reads
-- and writes go on), then each swap takes its table's ACCESS EXCLUSIVE lock for one short
-- catalog change (lock_timeout: it gives up, to be run again, rather than queue everything
-- behind a long query). Every statement can run again after a failure part way through.

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS recordings_account_sid_key
    ON recordings (account_sid, sid);

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS callbacks_account_id_key
    ON callbacks (account_sid, id);

-- The peaks carry their recording's account. Replicas still running the previous release write
-- rows without it while this runs: a trigger fills it in.
ALTER TABLE recording_peaks ADD COLUMN IF NOT EXISTS account_sid text;

CREATE OR REPLACE FUNCTION recording_peaks_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.account_sid IS NULL THEN
        SELECT r.account_sid INTO NEW.account_sid FROM recordings r WHERE r.sid = NEW.sid;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS recording_peaks_account ON recording_peaks;

CREATE TRIGGER recording_peaks_account BEFORE INSERT ON recording_peaks
    FOR EACH ROW EXECUTE FUNCTION recording_peaks_account();

-- In batches of 5,000 rows in SID order, each committed on its own: one UPDATE of every row would
-- hold all of their row locks until it ended (64 s at 10,000,000 recordings and 1,000,000 peaks),
-- and deleting a recording, which deletes its peaks row, would wait for it that long. A run again
-- after a failure walks on past the rows already filled in.
DO $$
DECLARE
    done text := '';
    upto text;
BEGIN
    LOOP
        SELECT max(sid) INTO upto FROM (
            SELECT sid FROM recording_peaks
            WHERE sid > done AND account_sid IS NULL ORDER BY sid LIMIT 5000
        ) batch;
        EXIT WHEN upto IS NULL;
        UPDATE recording_peaks p SET account_sid = r.account_sid
            FROM recordings r
            WHERE p.sid > done AND p.sid <= upto AND p.account_sid IS NULL AND r.sid = p.sid;
        done := upto;
        COMMIT;
    END LOOP;
END $$;

-- NOT NULL without a scan under ACCESS EXCLUSIVE: a CHECK validated under a weaker lock first.
DO $$ BEGIN
    ALTER TABLE recording_peaks ADD CONSTRAINT recording_peaks_account_sid_not_null
        CHECK (account_sid IS NOT NULL) NOT VALID;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;

ALTER TABLE recording_peaks VALIDATE CONSTRAINT recording_peaks_account_sid_not_null;

ALTER TABLE recording_peaks ALTER COLUMN account_sid SET NOT NULL;

ALTER TABLE recording_peaks DROP CONSTRAINT IF EXISTS recording_peaks_account_sid_not_null;

CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS recording_peaks_account_sid_key
    ON recording_peaks (account_sid, sid);

-- Whether a table's primary key still leads with its old column (the swap is not done yet).
CREATE OR REPLACE FUNCTION pg_temp.key_leads_with(tab regclass, col text) RETURNS boolean
LANGUAGE sql AS $$
    SELECT a.attname = col FROM pg_index i JOIN pg_attribute a
        ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = tab AND i.indisprimary
$$;

-- The swaps: one transaction each, skipped once done. A build cut short leaves an invalid index
-- behind, which IF NOT EXISTS above kept: it is said rather than swapped in.
DO $$
DECLARE
    broken text;
BEGIN
    SELECT string_agg(c.relname, ', ') INTO broken FROM pg_index i JOIN pg_class c
        ON c.oid = i.indexrelid
        WHERE NOT i.indisvalid AND c.relname IN ('recordings_account_sid_key',
            'callbacks_account_id_key', 'recording_peaks_account_sid_key');
    IF broken IS NOT NULL THEN
        RAISE EXCEPTION 'invalid index % (a build cut short): DROP INDEX CONCURRENTLY it and migrate again', broken;
    END IF;
    SET LOCAL lock_timeout = '5s';
    IF EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'recording_peaks_sid_fkey') THEN
        ALTER TABLE recording_peaks DROP CONSTRAINT recording_peaks_sid_fkey;
    END IF;
    IF pg_temp.key_leads_with('recordings', 'sid') THEN
        ALTER TABLE recordings DROP CONSTRAINT recordings_pkey;
        ALTER TABLE recordings ADD CONSTRAINT recordings_pkey
            PRIMARY KEY USING INDEX recordings_account_sid_key;
    END IF;
    IF pg_temp.key_leads_with('recording_peaks', 'sid') THEN
        ALTER TABLE recording_peaks DROP CONSTRAINT recording_peaks_pkey;
        ALTER TABLE recording_peaks ADD CONSTRAINT recording_peaks_pkey
            PRIMARY KEY USING INDEX recording_peaks_account_sid_key;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'recording_peaks_recording_fkey')
    THEN
        -- NOT VALID: added without a scan; the VALIDATE below checks the rows under a lock that
        -- lets reads and writes go on.
        ALTER TABLE recording_peaks ADD CONSTRAINT recording_peaks_recording_fkey
            FOREIGN KEY (account_sid, sid) REFERENCES recordings (account_sid, sid)
            ON DELETE CASCADE NOT VALID;
    END IF;
END $$;

ALTER TABLE recording_peaks VALIDATE CONSTRAINT recording_peaks_recording_fkey;

DO $$ BEGIN
    SET LOCAL lock_timeout = '5s';
    IF pg_temp.key_leads_with('callbacks', 'id') THEN
        ALTER TABLE callbacks DROP CONSTRAINT callbacks_pkey;
        ALTER TABLE callbacks ADD CONSTRAINT callbacks_pkey
            PRIMARY KEY USING INDEX callbacks_account_id_key;
    END IF;
END $$;

-- Run again after the swaps were done, the first statements built these once more: not needed.
DROP INDEX CONCURRENTLY IF EXISTS recordings_account_sid_key;

DROP INDEX CONCURRENTLY IF EXISTS recording_peaks_account_sid_key;

DROP INDEX CONCURRENTLY IF EXISTS callbacks_account_id_key;

-- The previous release's replicas are gone once the next migration runs; until then the
-- trigger stays (it costs one indexed lookup per peaks row written without an account).
