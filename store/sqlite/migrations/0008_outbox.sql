-- The change log as an outbox (store/sqlstore/changes.go): a typed payload
-- per change (JSON, "" for none), a counter that hands out sequence numbers
-- inside each writing transaction (no gaps, never reset by retention) and
-- remembers how far retention pruned, and the durable position of each
-- consumer of the log.
ALTER TABLE changes ADD COLUMN data TEXT NOT NULL DEFAULT '';

CREATE TABLE change_log (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq       INTEGER NOT NULL, -- the newest sequence number handed out
    pruned_through INTEGER NOT NULL  -- changes up to this one were pruned
);
INSERT INTO change_log (id, last_seq, pruned_through)
VALUES (1, MAX(COALESCE((SELECT MAX(seq) FROM changes), 0), COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)), 0);

CREATE TABLE cursors (
    name       TEXT    PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- Retention deletes by age.
CREATE INDEX changes_by_time ON changes (at);

-- Garbage collection deletes by time.
CREATE INDEX notices_by_time ON notices (at);
CREATE INDEX failures_by_time ON failures (at);
CREATE INDEX declines_by_time ON declines (declined_at);
CREATE INDEX device_requests_by_decision ON device_requests (decided_at);
