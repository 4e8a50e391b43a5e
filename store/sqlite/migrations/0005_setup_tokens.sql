-- Setup tokens v2 (SPEC section 3). A token now carries only its key's
-- number, its expiry, a random id and a tag; what the device may become and
-- the URL the code was issued for are stored here under the id when the code
-- is issued, and used_at consumes the id once.
--
-- The JWT-era tables go: consumed jtis guarded tokens that no longer verify,
-- and keys named by text kids sign nothing any more. Setup codes issued
-- before this migration stop working (they live an hour at most); the next
-- setup code makes key 1.
DROP TABLE used_jtis;
DROP TABLE signing_keys;

-- Setup-token keys, by number (the token's first byte); the key itself is
-- derived from the pairing secret and the number. The primary key keeps two
-- kept keys from sharing a number.
CREATE TABLE signing_keys (
    kid        INTEGER PRIMARY KEY CHECK (kid BETWEEN 1 AND 255),
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

CREATE TABLE setup_tokens (
    id         TEXT    PRIMARY KEY, -- lowercase hex of the token's 12-byte id
    kid        INTEGER NOT NULL,
    role       TEXT    NOT NULL,
    scopes     TEXT    NOT NULL,    -- JSON array
    label      TEXT    NOT NULL,
    url        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX setup_tokens_by_expiry ON setup_tokens (expires_at);
