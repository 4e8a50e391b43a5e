-- Pending DM pairing requests. The code is never stored: code_hash is a
-- keyed hash (HMAC-SHA256 under a key derived from the pairing secret).
CREATE TABLE requests (
    id           TEXT    PRIMARY KEY,
    channel      TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    sender       TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    code_hash    BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL, -- unix milliseconds, like every time here
    expires_at   INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX requests_by_sender ON requests (channel, account, sender);
CREATE INDEX requests_by_expiry ON requests (expires_at);
CREATE INDEX requests_by_scope_expiry ON requests (channel, account, expires_at);

-- The allowlist. Revocation is a soft delete (revoked_at set).
CREATE TABLE allowed (
    channel     TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    name        TEXT    NOT NULL DEFAULT '',
    approved_at INTEGER NOT NULL,
    approved_by TEXT    NOT NULL,
    via         TEXT    NOT NULL,
    revoked_at  INTEGER,
    revoked_by  TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (channel, account, sender)
) WITHOUT ROWID;

-- Senders whose request was rejected, for the decline window.
CREATE TABLE declines (
    channel     TEXT    NOT NULL,
    account     TEXT    NOT NULL,
    sender      TEXT    NOT NULL,
    declined_at INTEGER NOT NULL,
    PRIMARY KEY (channel, account, sender)
) WITHOUT ROWID;

-- Failed approvals (wrong code) since the scope's last lock.
CREATE TABLE failures (
    id      INTEGER PRIMARY KEY,
    channel TEXT    NOT NULL,
    account TEXT    NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX failures_by_scope ON failures (channel, account, at);

CREATE TABLE lockouts (
    channel  TEXT    NOT NULL,
    account  TEXT    NOT NULL,
    until    INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (channel, account)
) WITHOUT ROWID;

-- When a sender was last told something (rate-limit bookkeeping).
CREATE TABLE notices (
    channel TEXT    NOT NULL,
    account TEXT    NOT NULL,
    sender  TEXT    NOT NULL,
    kind    TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    PRIMARY KEY (channel, account, sender, kind)
) WITHOUT ROWID;

-- The change log, which is also the audit log. AUTOINCREMENT keeps sequence
-- numbers from ever being reused, so a follower's position stays valid.
CREATE TABLE changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    channel    TEXT    NOT NULL DEFAULT '',
    account    TEXT    NOT NULL DEFAULT '',
    sender     TEXT    NOT NULL DEFAULT '',
    request_id TEXT    NOT NULL DEFAULT '',
    actor      TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''
);
