-- Credentials as Twilio has them (design section 15): subaccounts with a status, a secondary
-- AuthToken beside the primary, and API keys (SK) that authenticate as their account.

-- A subaccount names its parent; Twilio's tree is one level deep (a subaccount has none of its
-- own), which the service keeps. A parent with subaccounts cannot be deleted before them.
-- 'closed' is final: the service never moves an account out of it.
ALTER TABLE accounts
    ADD COLUMN parent_sid text REFERENCES accounts (sid),
    ADD COLUMN status text NOT NULL DEFAULT 'active'
        CONSTRAINT accounts_status_check CHECK (status IN ('active', 'suspended', 'closed')),
    -- The secondary AuthToken, hashed with the primary's salt (so the account's PageTokens,
    -- keyed by that salt, survive its promotion) and sealed like the primary for signing.
    ADD COLUMN secondary_token_hash bytea,
    ADD COLUMN secondary_token_sealed bytea,
    ADD COLUMN secondary_token_created timestamptz,
    ADD CONSTRAINT accounts_parent_not_self CHECK (parent_sid <> sid);

-- A parent's listing of its subaccounts (GET /2010-04-01/Accounts.json), oldest first.
CREATE INDEX accounts_children ON accounts (parent_sid, date_created, sid)
    WHERE parent_sid IS NOT NULL;

-- API keys: the secret is shown once, at creation; only its salted hash is kept. Shard-ready
-- (design section 17): the primary key leads with account_sid.
CREATE TABLE api_keys (
    account_sid   text NOT NULL REFERENCES accounts (sid) ON DELETE CASCADE,
    sid           text NOT NULL CHECK (sid ~ '^SK[0-9a-f]{32}$'),
    friendly_name text NOT NULL DEFAULT '' CHECK (length(friendly_name) <= 64),
    secret_salt   bytea NOT NULL,
    secret_hash   bytea NOT NULL,
    date_created  timestamptz NOT NULL DEFAULT now(),
    date_updated  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_sid, sid)
);
-- `Basic SK...:secret` names the key alone, so authentication finds it by its SID. Not a
-- unique index: a unique key would have to lead with account_sid; SIDs are 128 random bits.
CREATE INDEX api_keys_sid ON api_keys (sid);
