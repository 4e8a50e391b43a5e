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

// tables lists the tables of the database at path.
func tables(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return names
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
	// What an earlier pairgate left: schema version 3, no mark, and only
	// the tables of migrations 0001-0003 (none of health or of later ones).
	v3 := []string{"allowed", "api_tokens", "changes", "declines", "device_requests", "devices", "failures",
		"lockouts", "notices", "requests", "signing_keys", "sqlite_sequence", "used_jtis"}
	stmts := []string{`PRAGMA application_id = 0`, `PRAGMA user_version = 3`}
	for _, table := range tables(t, path) {
		if !slices.Contains(v3, table) {
			stmts = append(stmts, `DROP TABLE `+table)
		}
	}
	sqlExec(t, path, stmts...)
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
