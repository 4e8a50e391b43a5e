-- Outbound messages (store/sqlstore/outbound.go): what pairgate wants a
-- sender or the owner to read, recorded in the transaction that causes it,
-- under a sequence number of its own (no gaps, committed in order) that a
-- gateway passes back as after=. A message that would carry a secret (a DM
-- code, a setup code) keeps only what renders it (template and ref); the
-- secret is made again when the message is read.
CREATE TABLE outbound (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    channel    TEXT    NOT NULL,
    account    TEXT    NOT NULL,
    recipient  TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('text', 'image')),
    text       TEXT    NOT NULL DEFAULT '',
    png        BLOB,
    parse_mode TEXT    NOT NULL DEFAULT '',
    template   TEXT    NOT NULL DEFAULT '',
    ref        TEXT    NOT NULL DEFAULT '',
    expires_at INTEGER,
    cause      TEXT    NOT NULL
);
CREATE INDEX outbound_by_time ON outbound (at);

CREATE TABLE outbound_log (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq INTEGER NOT NULL -- the newest sequence number handed out
);
INSERT INTO outbound_log (id, last_seq) VALUES (1, 0);

-- The durable position of each publisher of outbound messages.
CREATE TABLE outbound_cursors (
    name       TEXT    PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
