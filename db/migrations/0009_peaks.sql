-- Waveform peaks (audiowaveform JSON), made once per recording and kept in storage. A table of
-- their own rather than columns of recordings: a recording has at most one row here, written
-- when its peaks are stored, or when its audio proved undecodable (so it is not tried again).
-- Forgetting a recording's row (gc, an account's removal) forgets this one with it.
CREATE TABLE recording_peaks (
    sid         text PRIMARY KEY REFERENCES recordings (sid) ON DELETE CASCADE,
    peaks_key   text,
    size        integer CHECK (size >= 0),
    etag        text,
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT recording_peaks_made_or_failed CHECK (
        (peaks_key IS NOT NULL AND size IS NOT NULL AND etag IS NOT NULL AND error IS NULL)
        OR (peaks_key IS NULL AND error IS NOT NULL))
);
