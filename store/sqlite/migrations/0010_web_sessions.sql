-- Sessions of the web page: browsers signed in, and sign-in links (pairgate
-- web-link) not used yet, so that signing out ends a session for every
-- process on the database. Only the SHA-256 of a session's cookie or a
-- link's token is kept. token_hash is the SHA-256 of the API token a
-- browser signed in with (NULL for a link and a session made from one), so
-- revoking that token ends its sessions.
CREATE TABLE web_sessions (
    -- NOT NULL spelled out: SQLite lets a PRIMARY KEY that is not an
    -- INTEGER hold NULLs.
    hash       BLOB    PRIMARY KEY NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('session', 'link')),
    token_hash BLOB,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    remote     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
