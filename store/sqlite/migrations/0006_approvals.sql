-- Requests approved within their code's lifetime. Approving one again (a
-- double click, a retry, the loser of a race) is then answered "approved
-- already" instead of counting as a wrong code. A row is kept until its
-- request would have expired (expires_at), then purged: after that the code
-- is unknown again, as an expired code is. The columns are those of
-- requests, plus who approved and when.
CREATE TABLE approvals (
    id           TEXT    PRIMARY KEY,
    channel      TEXT    NOT NULL,
    account      TEXT    NOT NULL,
    sender       TEXT    NOT NULL,
    name         TEXT    NOT NULL DEFAULT '',
    code_hash    BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_sent_at INTEGER NOT NULL,
    approved_at  INTEGER NOT NULL,
    approved_by  TEXT    NOT NULL
);
-- Not unique: a code is unique among live requests only, and a new request
-- may (very rarely) draw the code of one approved before.
CREATE INDEX approvals_by_code ON approvals (code_hash);
CREATE INDEX approvals_by_expiry ON approvals (expires_at);
