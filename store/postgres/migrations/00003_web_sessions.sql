-- +goose Up
-- Sessions of the web page: browsers signed in, and sign-in links (pairgate
-- web-link) not used yet, so that signing out ends a session on every
-- replica. Only the SHA-256 of a session's cookie or a link's token is
-- kept. token_hash is the SHA-256 of the API token a browser signed in with
-- (NULL for a link and a session made from one), so revoking that token
-- ends its sessions.
CREATE TABLE web_sessions (
    hash       BYTEA  PRIMARY KEY,
    kind       TEXT   NOT NULL CHECK (kind IN ('session', 'link')),
    token_hash BYTEA,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    remote     TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
