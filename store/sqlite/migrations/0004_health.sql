-- One row that Ping rewrites to prove the store can still write (a full
-- disk fails it) without touching any state or appending to the change log.
CREATE TABLE health (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);

-- Account names are case-folded on input from now on (SPEC section 1):
-- fold the ones stored before, so `Work` and `work` stay one scope. A row
-- whose folded key is taken already is kept as it was rather than lost.
UPDATE OR IGNORE requests SET account = lower(account) WHERE account <> lower(account);
UPDATE OR IGNORE allowed  SET account = lower(account) WHERE account <> lower(account);
UPDATE OR IGNORE declines SET account = lower(account) WHERE account <> lower(account);
UPDATE OR IGNORE lockouts SET account = lower(account) WHERE account <> lower(account);
UPDATE OR IGNORE notices  SET account = lower(account) WHERE account <> lower(account);
UPDATE failures SET account = lower(account) WHERE account <> lower(account);
