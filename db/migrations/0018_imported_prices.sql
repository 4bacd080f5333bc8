-- What a recording imported from Twilio (`recordings import-twilio`) keeps of its source: the
-- price and its currency, as the source gave them (a decimal string such as "-0.0025", "USD").
-- Recordings made here have neither. Nullable columns without a default: no table rewrite.
ALTER TABLE recordings
    ADD COLUMN price text,
    ADD COLUMN price_unit text;
