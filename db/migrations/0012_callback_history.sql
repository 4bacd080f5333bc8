-- Delivered and failed callbacks are history: `recordings gc` forgets those older than
-- RECORDINGS_CALLBACK_HISTORY_DAYS, oldest first, through this index of settled rows.
CREATE INDEX callbacks_settled ON callbacks (date_updated) WHERE status <> 'pending';
