-- What the 2010-04-01 face shows beyond the 2008 fields, and soft delete.
--
-- `source` takes the spec's values only (twilio-oai `recording_enum_source`); rows made before
-- this migration were all uploads of a call's recording, which Twilio calls `RecordVerb`. A
-- constant default adds the column without rewriting the table; the CHECKs scan it once.
ALTER TABLE recordings
    ADD COLUMN source text NOT NULL DEFAULT 'RecordVerb'
        CONSTRAINT recordings_source_check CHECK (source IN (
            'DialVerb', 'Conference', 'OutboundAPI', 'Trunking', 'RecordVerb',
            'StartCallRecordingAPI', 'StartConferenceRecordingAPI')),
    ADD COLUMN start_time timestamptz,
    ADD COLUMN conference_sid text
        CONSTRAINT recordings_conference_sid_check CHECK (conference_sid ~ '^CF[0-9a-f]{32}$'),
    -- Soft delete: a DELETE sets deleted_at (the tombstone, as before) and the row now stays,
    -- metadata only, for the soft-delete window. media_purged_at says its objects are gone, so
    -- gc knows which tombstones still own objects and which merely wait to be forgotten.
    ADD COLUMN media_purged_at timestamptz,
    ADD CONSTRAINT recordings_purged_only_when_deleted
        CHECK (media_purged_at IS NULL OR deleted_at IS NOT NULL);

-- ConferenceSid lists, served like CallSid ones (newest first within one conference).
CREATE INDEX recordings_account_conference_listing
    ON recordings (account_sid, conference_sid, date_created DESC, sid DESC)
    WHERE deleted_at IS NULL AND conference_sid IS NOT NULL;

-- IncludeSoftDeleted=true lists merge the live listing index with this one, which holds only
-- the tombstones (a few days of deletes), instead of a second full-table listing index.
CREATE INDEX recordings_account_deleted_listing
    ON recordings (account_sid, date_created DESC, sid DESC)
    WHERE deleted_at IS NOT NULL;

-- gc's first pass: tombstones whose objects are still stored. Without it, that pass would walk
-- every soft-deleted row of the window to find the few that still own objects.
CREATE INDEX recordings_tombstones_with_media
    ON recordings (deleted_at)
    WHERE deleted_at IS NOT NULL AND media_purged_at IS NULL;

-- The live counters of migration 0004 need nothing new: their trigger fires on INSERT, DELETE
-- and UPDATE OF deleted_at, a soft-deleted row already counts as not live, and forgetting it
-- later (a DELETE of a row whose deleted_at is set) changes no count.
