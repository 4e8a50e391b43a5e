-- Device pairing. Keys are named here and derived from the pairing secret;
-- device tokens are kept only as hashes.
CREATE TABLE signing_keys (
    kid        TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
);

-- Consumed setup-token ids: the primary key makes a second use fail.
CREATE TABLE used_jtis (
    jti        TEXT    PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE TABLE device_requests (
    id          TEXT    PRIMARY KEY,
    device_id   TEXT    NOT NULL,
    public_key  BLOB    NOT NULL,
    name        TEXT    NOT NULL,
    platform    TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    scopes      TEXT    NOT NULL, -- JSON array
    label       TEXT    NOT NULL,
    check_code  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT    NOT NULL DEFAULT '',
    delivered   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX device_requests_by_status ON device_requests (status, expires_at);

CREATE TABLE devices (
    device_id    TEXT    PRIMARY KEY,
    public_key   BLOB    NOT NULL,
    name         TEXT    NOT NULL,
    platform     TEXT    NOT NULL,
    role         TEXT    NOT NULL,
    scopes       TEXT    NOT NULL,
    token_hash   BLOB    NOT NULL,
    request_id   TEXT    NOT NULL,
    paired_at    INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    revoked_at   INTEGER
);

ALTER TABLE changes ADD COLUMN device_id TEXT NOT NULL DEFAULT '';
