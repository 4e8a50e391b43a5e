package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pairgate/pairgate/api"
)

// restore puts a backup in place in a new home the way README.md says:
// the database file with mode 0600 and no -wal or -shm beside it, and the
// pairing key kept from the original home.
func restore(t *testing.T, backup, fromHome string) string {
	t.Helper()
	home := t.TempDir()
	for src, dst := range map[string]string{backup: "pairgate.db", filepath.Join(fromHome, "pairing.key"): "pairing.key"} {
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(filepath.Join(home, dst), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		in.Close()
		out.Close()
	}
	return home
}

// allowedSenders lists home's allowlist with the CLI.
func allowedSenders(t *testing.T, home string) []api.AllowedSender {
	t.Helper()
	var l struct{ Allowed []api.AllowedSender }
	devRunJSON(t, home, quietEnv(), &l, "pairing", "allowed", "--include-revoked")
	return l.Allowed
}

// TestBackupWhileServing: `pairgate backup` makes a consistent copy of the
// store while the daemon runs and other processes write, mode 0600, never
// over an existing file; restored as README.md says, the copy opens and
// lists the allowlist as it was: every batch of senders that one command
// allowed at once is in it whole or not at all, and a copy taken when the
// writes have stopped lists exactly the same allowlist as the original.
func TestBackupWhileServing(t *testing.T) {
	home := t.TempDir()
	seed := []string{"pairing", "allow", "telegram"}
	for i := range 200 {
		seed = append(seed, fmt.Sprint(100000+i))
	}
	if r := devRun(t, home, quietEnv(), seed...); r.code != 0 {
		t.Fatalf("seeding: %s", r.stderr)
	}
	d := startServe(t, home)

	const batch = 10
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			args := []string{"pairing", "allow", "telegram"}
			for i := range batch {
				args = append(args, fmt.Sprint(200000+n*batch+i))
			}
			if r := devRun(t, home, quietEnv(), args...); r.code != 0 {
				t.Errorf("writer: exit %d %s", r.code, r.stderr)
				return
			}
		}
	})
	dir := t.TempDir()
	var backups []string
	for i := range 3 {
		time.Sleep(150 * time.Millisecond)
		path := filepath.Join(dir, fmt.Sprintf("during-%d.db", i))
		if r := devRun(t, home, quietEnv(), "backup", path); r.code != 0 || !strings.Contains(r.stdout, path) {
			t.Fatalf("backup during writes: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		backups = append(backups, path)
	}
	close(stop)
	wg.Wait()

	for _, path := range backups {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
		}
		got := allowedSenders(t, restore(t, path, home))
		t.Logf("%s: %d allowed senders", filepath.Base(path), len(got))
		if len(got) < 200 || (len(got)-200)%batch != 0 {
			t.Errorf("%s holds %d allowed senders: not the 200 seeded plus whole batches of %d", path, len(got), batch)
		}
	}

	// The daemon is undisturbed.
	if status, _, err := d.do(&http.Client{Timeout: 5 * time.Second}, "GET", "/readyz", "", ""); err != nil || status != 200 {
		t.Errorf("/readyz after the backups: %d %v", status, err)
	}

	final := filepath.Join(dir, "final.db")
	var out struct {
		File     string `json:"file"`
		Database string `json:"database"`
		Bytes    int64  `json:"bytes"`
	}
	devRunJSON(t, home, quietEnv(), &out, "backup", final)
	if out.File != final || out.Database != filepath.Join(home, "pairgate.db") || out.Bytes <= 0 {
		t.Errorf("backup --json: %+v", out)
	}
	if diff := cmp.Diff(allowedSenders(t, home), allowedSenders(t, restore(t, final, home))); diff != "" {
		t.Errorf("the restored backup lists another allowlist (-original +restored):\n%s", diff)
	}

	// An existing file is never overwritten.
	before, _ := os.ReadFile(final)
	r := devRun(t, home, quietEnv(), "backup", final)
	after, _ := os.ReadFile(final)
	if r.code != 1 || !strings.Contains(r.stderr, final) || !strings.Contains(r.stderr, "exists") || string(before) != string(after) {
		t.Errorf("backup over an existing file: exit %d, stderr %q (file unchanged: %t); want exit 1 naming it", r.code, r.stderr, string(before) == string(after))
	}
}
