package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/internal/fault"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// seedHome allows n telegram senders in home's database, the way a home
// that has been in use for a while looks.
func seedHome(t *testing.T, home string, n int) {
	t.Helper()
	if r := run(t, home, "init"); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	st, err := sqlite.Open(context.Background(), sqlite.Options{Path: filepath.Join(home, "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	list := make([]store.AllowSender, n)
	for i := range list {
		list[i].Sender = fmt.Sprint(1000000 + i)
	}
	if _, err := st.Allow(context.Background(), store.AllowParams{Scope: store.Scope{Channel: "telegram", Account: "default"},
		Senders: list, Via: store.ViaManual, Actor: store.Actor{Name: "test"}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// The attack: serve on a home with 20,020 allowed senders, rm pairgate.db,
// then 30 POST /v1/pairing/allow. They all returned 200 with /readyz green,
// and after a restart the daemon ran on an empty allowlist. Now every write
// answers 503, /readyz is red, the log names the file, and a restart is
// refused with what to do.
func TestServeNoticesItsDatabaseDeleted(t *testing.T) {
	home := t.TempDir()
	seedHome(t, home, 20020)
	d := startServe(t, home)
	admin := d.adminToken()
	client := &http.Client{Timeout: 5 * time.Second}
	if status, body, err := d.do(client, "GET", "/readyz", "", ""); err != nil || status != 200 {
		t.Fatalf("/readyz before: %d %s %v", status, body, err)
	}
	db := filepath.Join(home, "pairgate.db")
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		status, body, err := d.do(client, "POST", "/v1/pairing/allow", admin, fmt.Sprintf(`{"channel":"telegram","sender":"%d"}`, 5000+i))
		if err != nil || status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"unavailable"`) {
			t.Fatalf("allow %d after rm: %d %s %v; want 503 unavailable", i, status, body, err)
		}
	}
	if status, body, _ := d.do(client, "GET", "/readyz", "", ""); status != http.StatusServiceUnavailable {
		t.Errorf("/readyz after rm: %d %s; want 503", status, body)
	}
	// Senders allowed before still get in: the gate answers from memory;
	// a stranger gets no code the store could not keep.
	for sender, want := range map[string]string{"1000007": `"verdict":"admit"`, "777": `"reason":"unavailable"`} {
		status, body, err := d.do(client, "POST", "/v1/admit", admin, `{"channel":"telegram","sender":"`+sender+`"}`)
		if err != nil || status != 200 || !strings.Contains(string(body), want) {
			t.Errorf("admit %s after rm: %d %s %v; want %s", sender, status, body, err, want)
		}
	}
	if !strings.Contains(d.stderr.String(), db) || !strings.Contains(d.stderr.String(), "deleted") {
		t.Errorf("the daemon's log does not name the deleted file %s:\n%s", db, serveTail(d.stderr.String(), 20))
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("the deleted database was recreated")
	}
	if code, _ := d.stop(10 * time.Second); code != 0 {
		t.Logf("serve exited %d", code)
	}
	r := run(t, home, "serve", "--listen", serveFreeAddr(t))
	if r.code != 1 || !strings.Contains(r.stderr, db) || !strings.Contains(r.stderr, "missing") || !strings.Contains(r.stderr, "pairgate init --force") {
		t.Fatalf("restart without the database: exit %d, stderr %q; want 1 naming the file and init --force", r.code, r.stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Fatal("the refused restart created the database")
	}
}

// Every command refuses a missing or empty database in a used home, names
// what is there and what to do; init --force starts empty on purpose; a
// fresh home needs no ceremony.
func TestLostDatabaseIsRefusedAtStart(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, home string)
		state  string
	}{
		{"missing", func(t *testing.T, home string) { os.Remove(filepath.Join(home, "pairgate.db")) }, "missing"},
		{"empty", func(t *testing.T, home string) {
			os.Remove(filepath.Join(home, "pairgate.db-wal"))
			os.Remove(filepath.Join(home, "pairgate.db-shm"))
			if err := os.Truncate(filepath.Join(home, "pairgate.db"), 0); err != nil {
				t.Fatal(err)
			}
		}, "empty (0 bytes)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := t.TempDir()
			if r := run(t, home, "pairing", "allow", "telegram", "42"); r.code != 0 {
				t.Fatal(r.stderr)
			}
			c.damage(t, home)
			for _, args := range [][]string{{"admit", "telegram", "42"}, {"pairing", "allowed"}, {"pairing", "allow", "telegram", "43"}, {"devices", "list"}, {"tokens", "list"}} {
				r := run(t, home, args...)
				if r.code != 1 || !strings.Contains(r.stderr, c.state) || !strings.Contains(r.stderr, "pairing.key") || !strings.Contains(r.stderr, "init --force") {
					t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
				}
			}
			if r := run(t, home, "init"); r.code != 1 {
				t.Errorf("init without --force: exit %d, want 1", r.code)
			}
			if r := run(t, home, "init", "--force"); r.code != 0 {
				t.Fatalf("init --force: exit %d %s", r.code, r.stderr)
			}
			r := run(t, home, "pairing", "allowed", "--json")
			if r.code != 0 || !strings.Contains(r.stdout, `"allowed": []`) {
				t.Errorf("after init --force: exit %d %q, want an empty allowlist", r.code, r.stdout)
			}
		})
	}
	t.Run("fresh home", func(t *testing.T) {
		home := filepath.Join(t.TempDir(), "new")
		if r := run(t, home, "pairing", "list"); r.code != 0 {
			t.Fatalf("a fresh home: exit %d %s", r.code, r.stderr)
		}
		other := filepath.Join(t.TempDir(), "keyfirst")
		if r := run(t, other, "keys", "init"); r.code != 0 {
			t.Fatalf("keys init on a fresh home: %s", r.stderr)
		}
		if r := run(t, other, "pairing", "list"); r.code != 0 {
			t.Fatalf("after keys init on a fresh home: exit %d %s", r.code, r.stderr)
		}
	})
}

// --home "" is a mistake, not a request for ~/.pairgate.
func TestEmptyHomeIsAUsageError(t *testing.T) {
	cmd := []string{"--home", "", "pairing", "list"}
	c := exec.Command(binary, cmd...)
	c.Env = append(os.Environ(), "HOME="+t.TempDir(), "PAIRGATE_HOME=")
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	if r.code != 2 || !strings.Contains(r.stderr, "--home") {
		t.Fatalf("pairgate %q: exit %d, stderr %q; want 2 naming --home", cmd, r.code, r.stderr)
	}
}

// An operator exporting the allowlist from a damaged database gets exit 1
// and a message, never part of the list with success (4,950 of 20,000 rows
// came out with exit 0 before).
func TestDamagedAllowlistExportFails(t *testing.T) {
	home := t.TempDir()
	seedHome(t, home, 20000)
	fault.DamageLeaf(t, filepath.Join(home, "pairgate.db"), "allowed")
	r := run(t, home, "pairing", "allowed", "telegram", "--json")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "damaged") || !strings.Contains(r.stderr, "restore it from a backup") {
		t.Fatalf("pairing allowed on a damaged database: exit %d, %d bytes of output, stderr %q; want exit 1, nothing on stdout, a message", r.code, len(r.stdout), r.stderr)
	}
}
