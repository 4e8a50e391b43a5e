package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/internal/pgtest"
)

// postgresHome is a home whose pairgate.yaml puts the store on a fresh
// PostgreSQL schema.
func postgresHome(t *testing.T) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	home := t.TempDir()
	cfg := "pairing:\n  storage:\n    driver: postgres\n    dsn: " + `"` + dsn + `"` + "\n"
	if err := os.WriteFile(filepath.Join(home, "pairgate.yaml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return home
}

// The README's CLI flow, unchanged, on PostgreSQL: a sender writes in, the
// owner approves by code, the sender is admitted, listed, revoked; the
// daemon answers on the same database.
func TestPostgresCLIFlow(t *testing.T) {
	home := postgresHome(t)
	var d api.Decision
	runJSON(t, home, &d, "admit", "telegram", "123456789", "--name", "Alice")
	if d.Verdict != api.Challenge || d.Code == "" {
		t.Fatalf("first message: %+v", d)
	}
	var pending struct{ Pending []api.PendingRequest }
	runJSON(t, home, &pending, "pairing", "list")
	if len(pending.Pending) != 1 || pending.Pending[0].Name != "Alice" {
		t.Fatalf("pairing list: %+v", pending)
	}
	if r := run(t, home, "pairing", "approve", "telegram", strings.ToLower(d.Code[:4])+"-"+d.Code[4:]); r.code != 0 || !strings.Contains(r.stdout, "Approved 123456789 (Alice)") {
		t.Fatalf("approve: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	runJSON(t, home, &d, "admit", "telegram", "123456789")
	if d.Verdict != api.Admit {
		t.Fatalf("after approval: %+v", d)
	}
	r := run(t, home, "pairing", "allowed")
	if r.code != 0 || !strings.Contains(r.stdout, "123456789") || !strings.Contains(r.stdout, "Alice") {
		t.Fatalf("pairing allowed: exit %d %s", r.code, r.stdout)
	}

	s := startServe(t, home)
	if !strings.Contains(s.stdout.String(), "database:    PostgreSQL postgres@") || strings.Contains(s.stdout.String(), "sslmode") {
		t.Errorf("serve's banner does not name the PostgreSQL database (and only that):\n%s", s.stdout)
	}
	admin := s.adminToken()
	client := &http.Client{Timeout: 5 * time.Second}
	admit := func() api.Decision {
		t.Helper()
		status, body, err := s.do(client, "POST", "/v1/admit", admin, `{"channel":"telegram","sender":"123456789"}`)
		var d api.Decision
		if err != nil || status != 200 || json.Unmarshal(body, &d) != nil {
			t.Fatalf("POST /v1/admit: %d %s %v", status, body, err)
		}
		return d
	}
	if d := admit(); d.Verdict != api.Admit {
		t.Fatalf("the daemon on PostgreSQL: %+v", d)
	}
	if status, body, _ := s.do(client, "GET", "/readyz", "", ""); status != 200 {
		t.Errorf("/readyz on PostgreSQL: %d %s", status, body)
	}
	// A revocation by the CLI reaches the daemon within a second.
	if r := run(t, home, "pairing", "revoke", "telegram", "123456789"); r.code != 0 {
		t.Fatalf("revoke: %s", r.stderr)
	}
	for start := time.Now(); admit().Verdict == api.Admit; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("the daemon still admits a sender revoked by the CLI 2 s later")
		}
	}
	if r := run(t, home, "backup", filepath.Join(t.TempDir(), "copy.db")); r.code != 1 || !strings.Contains(r.stderr, "own backup tools") {
		t.Errorf("backup of a PostgreSQL store: exit %d %s; want 1 pointing to the database's own tools", r.code, r.stderr)
	}
}
