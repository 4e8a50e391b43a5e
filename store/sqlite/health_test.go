package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/internal/fault"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

var tg = store.Scope{Channel: "telegram", Account: "default"}

func mustOpen(t *testing.T, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func allow(ctx context.Context, s store.Store, senders ...string) error {
	list := make([]store.AllowSender, len(senders))
	for i, v := range senders {
		list[i] = store.AllowSender{Sender: v}
	}
	_, err := s.Allow(ctx, store.AllowParams{Scope: tg, Senders: list, Via: store.ViaManual, Actor: store.Actor{Name: "test"}, Now: time.Now()})
	return err
}

func wantUnavailable(t *testing.T, what string, err error, mentions ...string) {
	t.Helper()
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("%s: %v, want an error wrapping %q", what, err, store.ErrUnavailable)
		return
	}
	for _, m := range mentions {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s: %q does not mention %q", what, err, m)
		}
	}
}

// sqlExec runs statements on a plain connection to path, as another
// program would.
func sqlExec(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// A SQLite file that belongs to something else is refused, byte for byte
// untouched (it was once taken over with 13 tables added).
func TestForeignDatabaseRefusedUntouched(t *testing.T) {
	for _, c := range []struct {
		name    string
		stmts   []string
		mention string
	}{
		{"other tables", []string{`CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)`, `INSERT INTO users (email) VALUES ('a@example.com')`}, "users"},
		{"our table names beside others", []string{`CREATE TABLE allowed (x)`, `CREATE TABLE changes (y)`, `CREATE TABLE invoices (z)`}, "invoices"},
		{"our table names, no schema version", []string{`CREATE TABLE allowed (x)`, `CREATE TABLE changes (y)`}, "schema version 0"},
		{"another application", []string{`PRAGMA application_id = 1234`, `CREATE TABLE t (x)`}, "application_id is 0x4d2"},
		{"an index only", []string{`CREATE TABLE IF NOT EXISTS t (x)`, `CREATE INDEX i ON t (x)`}, "t"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "other.db")
			sqlExec(t, path, c.stmts...)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s, err := sqlite.Open(t.Context(), sqlite.Options{Path: path})
			if err == nil {
				s.Close()
				t.Fatal("Open took over a database that is not pairgate's")
			}
			wantUnavailable(t, "Open", err, "not a pairgate database", c.mention, path)
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(before, after) {
				t.Errorf("the foreign database changed (%d bytes before, %d after, %v)", len(before), len(after), err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.Name() != "other.db" {
					t.Errorf("Open left %s beside the foreign database", e.Name())
				}
			}
		})
	}
}

// Databases made before files were marked are pairgate's: they open and
// get the mark. Empty files are ours to initialise.
func TestUnmarkedPairgateDatabaseOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	if err := allow(t.Context(), s, "1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// What an earlier pairgate left: schema version 3, no mark, no health
	// table, nor anything of the migrations after 0004.
	stmts := append([]string{`PRAGMA application_id = 0`, `DROP TABLE health`}, schemaV4...)
	sqlExec(t, path, append(stmts, `PRAGMA user_version = 3`)...)
	s = mustOpen(t, sqlite.Options{Path: path})
	l, err := s.ListAllowed(t.Context(), store.RequestFilter{}, false)
	if err != nil || len(l) != 1 {
		t.Fatalf("the allowlist after reopening: %v, %v", l, err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	s.Close()
	db, _ := sql.Open("sqlite", "file:"+path+"?mode=ro")
	defer db.Close()
	var app int64
	if err := db.QueryRow(`PRAGMA application_id`).Scan(&app); err != nil || app != 0x50475431 {
		t.Errorf("application_id after opening = %#x, %v; want 0x50475431", app, err)
	}

	empty := filepath.Join(t.TempDir(), "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, sqlite.Options{Path: empty})
}

// seedAllowed allows n senders in one transaction.
func seedAllowed(t *testing.T, s store.Store, n int) {
	t.Helper()
	senders := make([]string, n)
	for i := range senders {
		senders[i] = fmt.Sprint(100000 + i)
	}
	if err := allow(t.Context(), s, senders...); err != nil {
		t.Fatal(err)
	}
}

// An allowlist with a damaged page is never listed in part as if whole
// (4,950 of 20,000 rows came out with success before), and a daemon that
// asks for integrity checks refuses the file at open.
func TestDamagedAllowlistIsNotListedPartially(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	seedAllowed(t, s, 20000)
	s.Close() // checkpoints the WAL into the file
	fault.DamageLeaf(t, path, "allowed")

	s = mustOpen(t, sqlite.Options{Path: path})
	l, err := s.ListAllowed(t.Context(), store.RequestFilter{Channel: "telegram"}, false)
	if err == nil {
		t.Fatalf("ListAllowed of a damaged allowlist succeeded with %d of 20000 entries", len(l))
	}
	wantUnavailable(t, "ListAllowed", err, "damaged", path, "restore it from a backup")
	_, err = s.ScanAllowed(t.Context(), func(store.Scope, string) error { return nil })
	wantUnavailable(t, "ScanAllowed", err, "damaged")
	wantUnavailable(t, "Ping after damage was found", s.Ping(t.Context()), "damaged")
	s.Close()

	_, err = sqlite.Open(t.Context(), sqlite.Options{Path: path, IntegrityCheck: time.Minute})
	wantUnavailable(t, "Open with IntegrityCheck", err, "damaged", "quick_check")
}

// A daemon whose file is damaged while it runs finds out on its own, and
// is usable again by itself once the file is repaired.
func TestDamageFoundAndClearedWhileRunning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	seedAllowed(t, s, 20000)
	s.Close()
	s = mustOpen(t, sqlite.Options{Path: path, PollInterval: 20 * time.Millisecond, IntegrityCheck: 100 * time.Millisecond})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping before damage: %v", err)
	}
	repair := fault.DamageLeaf(t, path, "allowed")
	waitPing(t, s, false, 2*time.Second, "after a page was damaged")
	// A repair makes it healthy again without a restart.
	repair()
	waitPing(t, s, true, 10*time.Second, "after the page was repaired")
}

// waitPing waits until Ping's outcome is ok (or not).
func waitPing(t *testing.T, s *sqlite.Store, ok bool, limit time.Duration, when string) error {
	t.Helper()
	var err error
	for start := time.Now(); time.Since(start) < limit; time.Sleep(10 * time.Millisecond) {
		if err = s.Ping(t.Context()); (err == nil) == ok {
			return err
		}
	}
	t.Fatalf("%s: Ping = %v after %v, want ok=%v", when, err, limit, ok)
	return nil
}

// A database file deleted or replaced under a running store is noticed:
// no write is acknowledged, Ping fails naming the file, the file is never
// recreated, and moving the file back makes the store whole again.
func TestDeletedOrReplacedFile(t *testing.T) {
	t.Run("deleted", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pairgate.db")
		s := mustOpen(t, sqlite.Options{Path: path, PollInterval: 20 * time.Millisecond})
		seedAllowed(t, s, 100)
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		for i := range 30 {
			wantUnavailable(t, fmt.Sprint("Allow ", i, " after rm"), allow(t.Context(), s, fmt.Sprint(9000+i)), "deleted", path)
		}
		wantUnavailable(t, "Ping after rm", s.Ping(t.Context()), "deleted", path)
		// Readers open and close connections; none may create the file.
		for range 20 {
			if _, err := s.ListAllowed(t.Context(), store.RequestFilter{}, false); err != nil {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the deleted database was recreated: %v", err)
		}
	})
	t.Run("moved away and back", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pairgate.db")
		s := mustOpen(t, sqlite.Options{Path: path, PollInterval: 20 * time.Millisecond})
		seedAllowed(t, s, 100)
		if err := os.Rename(path, path+".moved"); err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, "Allow while moved away", allow(t.Context(), s, "1"), "deleted")
		wantUnavailable(t, "Ping while moved away", s.Ping(t.Context()), "deleted")
		if err := os.Rename(path+".moved", path); err != nil {
			t.Fatal(err)
		}
		waitPing(t, s, true, time.Second, "after moving the file back")
		if err := allow(t.Context(), s, "1"); err != nil {
			t.Errorf("Allow after moving the file back: %v", err)
		}
	})
	t.Run("replaced", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "pairgate.db")
		s := mustOpen(t, sqlite.Options{Path: path})
		seedAllowed(t, s, 100)
		other := filepath.Join(t.TempDir(), "other.db")
		mustOpen(t, sqlite.Options{Path: other}).Close()
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, "Allow after the file was replaced", allow(t.Context(), s, "1"), "replaced", "restart pairgate")
		wantUnavailable(t, "Ping after the file was replaced", s.Ping(t.Context()), "replaced")
	})
}

// On a full disk Ping fails (writes fail), and it passes again by itself
// once there is room.
func TestFullDisk(t *testing.T) {
	dir := fault.Tmpfs(t, 4<<20)
	path := filepath.Join(dir, "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	seedAllowed(t, s, 1000)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping with room to spare: %v", err)
	}
	release := fault.Fill(t, dir)
	failed := false
	for i := 0; i < 1000 && !failed; i++ {
		if err := allow(t.Context(), s, fmt.Sprint(500000+i)); err != nil {
			wantUnavailable(t, "Allow on a full disk", err)
			failed = true
		}
	}
	if !failed {
		t.Fatal("1000 writes succeeded on a full disk: the test proves nothing")
	}
	wantUnavailable(t, "Ping on a full disk", s.Ping(t.Context()))
	release()
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping once there is room again: %v", err)
	}
	if err := allow(t.Context(), s, "7"); err != nil {
		t.Errorf("Allow once there is room again: %v", err)
	}
}

// schemaV7 turns a current database's tables back into those of schema
// version 7: a change log without the outbox of 0008, no leases (0009), no
// web sessions (0010), no remote address on device requests (0011), no
// outbound messages (0012).
var schemaV7 = []string{
	`DROP TABLE outbound_cursors`,
	`DROP TABLE outbound_log`,
	`DROP TABLE outbound`,
	`ALTER TABLE device_requests DROP COLUMN remote`,
	`DROP TABLE web_sessions`,
	`DROP TABLE leases`,
	`DROP TABLE change_log`,
	`DROP TABLE cursors`,
	`DROP INDEX changes_by_time`,
	`DROP INDEX notices_by_time`,
	`DROP INDEX failures_by_time`,
	`DROP INDEX declines_by_time`,
	`DROP INDEX device_requests_by_decision`,
	`ALTER TABLE changes DROP COLUMN data`,
}

// schemaV4 turns a current database's tables back into those of schema
// version 4: JWT-era setup tokens (0005), no approvals (0006), devices
// without a label (0007), a change log without outbox (0008).
var schemaV4 = append(slices.Clone(schemaV7),
	`DROP TABLE approvals`,
	`DROP TABLE setup_tokens`,
	`DROP TABLE signing_keys`,
	`CREATE TABLE signing_keys (kid TEXT PRIMARY KEY, created_at INTEGER NOT NULL, retired_at INTEGER)`,
	`CREATE TABLE used_jtis (jti TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)`,
	`ALTER TABLE devices DROP COLUMN label`,
)

// A database of schema version 4 held JWT-era keys (named by text) and
// consumed jtis; migrating drops both, since no JWT verifies any more, and
// setup tokens of the compact format can be issued and consumed at once.
func TestMigrateFromJWTSetupTokens(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	if err := allow(ctx, s, "1"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	sqlExec(t, path, append(schemaV4,
		`INSERT INTO signing_keys (kid, created_at) VALUES ('kabcdefgh', 1)`,
		`INSERT INTO used_jtis (jti, expires_at) VALUES ('00112233445566778899aabbccddeeff', 1)`,
		`PRAGMA user_version = 4`)...)

	s = mustOpen(t, sqlite.Options{Path: path})
	if keys, err := s.SigningKeys(ctx); err != nil || len(keys) != 0 {
		t.Errorf("JWT-era keys after migrating: %+v, %v; want none", keys, err)
	}
	now := time.Now()
	k := store.SigningKey{KID: 1, CreatedAt: now}
	if err := s.RotateSigningKey(ctx, k, now.Add(-time.Hour), store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	tok := store.SetupToken{ID: "00112233445566778899aabb", KID: 1, Role: "node", URL: "wss://gw.example.com/pair",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := s.CreateSetupToken(ctx, tok, now.Add(-time.Hour), store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	r := store.DeviceRequest{ID: "dreq_m", DeviceID: "d", PublicKey: make([]byte, 32), Role: "node", CheckCode: "000000",
		CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Status: store.DevicePending}
	if err := s.CreateDeviceRequest(ctx, r, tok.ID, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if l, err := s.ListAllowed(ctx, store.RequestFilter{}, false); err != nil || len(l) != 1 {
		t.Errorf("the allowlist after migrating: %v, %v", l, err)
	}
	db, _ := sql.Open("sqlite", "file:"+path+"?mode=ro")
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'used_jtis'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("used_jtis after migrating: %d tables named so, %v; want none", n, err)
	}
}

// A database of schema version 7 has changes numbered by AUTOINCREMENT;
// after 0008 the counter goes on from the last of them, so followers'
// positions stay valid.
func TestMigrateToOutboxContinuesTheSequence(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	for _, sender := range []string{"1", "2", "3"} {
		if err := allow(ctx, s, sender); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	sqlExec(t, path, append(schemaV7, `PRAGMA user_version = 7`)...)
	s = mustOpen(t, sqlite.Options{Path: path})
	if err := allow(ctx, s, "4"); err != nil {
		t.Fatal(err)
	}
	cs, err := s.Changes(ctx, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for _, c := range cs {
		seqs = append(seqs, c.Seq)
	}
	if want := []int64{1, 2, 3, 4}; !slices.Equal(seqs, want) {
		t.Errorf("sequence numbers across the migration: %v, want %v", seqs, want)
	}
}

// A write whose context ends part-way never leaves SQLite's write lock
// held: another process can write right after (a cancelled write once kept
// the pinned connection inside its transaction, and every other process
// waited out its busy timeout).
func TestCancelledWriteReleasesTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	other := mustOpen(t, sqlite.Options{Path: path, BusyTimeout: 2 * time.Second})
	senders := make([]string, 500)
	for i := range senders {
		senders[i] = fmt.Sprint(700000 + i)
	}
	cancelled := 0
	for i := range 100 {
		ctx, cancel := context.WithTimeout(t.Context(), time.Duration(i%10)*100*time.Microsecond)
		if err := allow(ctx, s, senders...); err != nil {
			cancelled++
		}
		cancel()
		if err := allow(t.Context(), other, fmt.Sprint(800000+i)); err != nil {
			t.Fatalf("round %d: another store cannot write after a cancelled write: %v", i, err)
		}
	}
	if cancelled == 0 {
		t.Fatal("no write was cut short by its context: the test proves nothing")
	}
	if err := allow(t.Context(), s, "1"); err != nil {
		t.Errorf("the store whose writes were cancelled cannot write again: %v", err)
	}
}
