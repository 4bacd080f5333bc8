-- When the cached MP3 was made: its Last-Modified, distinct from the recording's DateUpdated.
ALTER TABLE recordings ADD COLUMN mp3_created_at timestamptz;
