// Package sqlitetest writes SQLite files as other programs would have
// written them (another pairing system's database, for an import). It is
// for tests only.
package sqlitetest

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// The tables of the pairing systems pairgate imports from, in the shapes
// their documentation and schemas give (columns only; nothing of their
// code).
const (
	// NexoPairing is nexo's pairing.db.
	NexoPairing = `CREATE TABLE pairing_pending (channel TEXT NOT NULL, account_id TEXT NOT NULL, sender_id TEXT NOT NULL,
	code TEXT NOT NULL, created_at TEXT NOT NULL, meta_json TEXT, PRIMARY KEY (channel, account_id, sender_id));
CREATE TABLE pairing_allow_from (channel TEXT NOT NULL, account_id TEXT NOT NULL, sender_id TEXT NOT NULL,
	approved_at TEXT NOT NULL, approved_via TEXT NOT NULL, revoked_at TEXT, PRIMARY KEY (channel, account_id, sender_id))`

	// OpenClawState is the pairing part of OpenClaw's state/openclaw.sqlite.
	OpenClawState = `CREATE TABLE channel_pairing_requests (channel_key TEXT NOT NULL, account_id TEXT NOT NULL, request_id TEXT NOT NULL,
	code TEXT NOT NULL, created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, meta_json TEXT,
	PRIMARY KEY (channel_key, account_id, request_id)) STRICT;
CREATE TABLE channel_pairing_allow_entries (channel_key TEXT NOT NULL, account_id TEXT NOT NULL, entry TEXT NOT NULL,
	sort_order INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (channel_key, account_id, entry)) STRICT`
)

// Create creates the SQLite database at path (and its directory) and runs
// stmts in it, failing the test if any fails.
func Create(t testing.TB, path string, stmts ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}
