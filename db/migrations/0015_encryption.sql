-- Voice Recording Encryption (design section 16): the accounts' RSA public keys (Twilio's
-- Credentials/PublicKeys), the one an account encrypts its new recordings with, and what each
-- encrypted recording needs to be decrypted by the holder of the private key.
--
-- Shard-ready (section 17): the key's primary key leads with its account.
CREATE TABLE public_keys (
    account_sid   text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    sid           text NOT NULL CHECK (sid ~ '^CR[0-9a-f]{32}$'),
    friendly_name text,
    -- The key as SubjectPublicKeyInfo PEM, re-encoded from what was registered (checked: RSA of
    -- 2048 bits or more).
    public_key    text NOT NULL,
    date_created  timestamptz NOT NULL DEFAULT now(),
    date_updated  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_sid, sid)
);

-- The key new recordings are encrypted with (NULL: stored in the clear). The foreign key names
-- the account too, so an account can only ever point at a key of its own, and a key an account
-- encrypts with cannot be deleted (the service refuses first, with a clearer message).
ALTER TABLE accounts
    ADD COLUMN encryption_key_sid text,
    ADD CONSTRAINT accounts_encryption_key_fkey
        FOREIGN KEY (sid, encryption_key_sid) REFERENCES public_keys (account_sid, sid);

-- Twilio's `encryption_details` of an encrypted recording, as the 2010 resource shows it:
-- {"type": "rsa-aes", "public_key_sid": "CR...", "encrypted_cek": base64, "iv": base64}. Kept as
-- a document, not columns, so a recording imported from Twilio keeps its details as they came.
-- No foreign key to public_keys: an imported recording names a key of Twilio's.
ALTER TABLE recordings
    ADD COLUMN encryption_details jsonb
        CONSTRAINT recordings_encryption_details_check
        CHECK (encryption_details IS NULL OR jsonb_typeof(encryption_details) = 'object');

-- "Is a key still needed?": a live recording of the account encrypted under it keeps it from
-- being deleted. Only encrypted rows are in this index.
CREATE INDEX recordings_encryption_keys
    ON recordings (account_sid, (encryption_details ->> 'public_key_sid'))
    WHERE encryption_details IS NOT NULL AND deleted_at IS NULL;
