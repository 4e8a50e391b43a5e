package server_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairgate/pairgate/internal/fault"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// waitReady waits until /readyz answers want (200 or 503).
func (e *robustEnv) waitReady(want int, limit time.Duration, when string) {
	e.t.Helper()
	var status int
	var body []byte
	for start := time.Now(); time.Since(start) < limit; time.Sleep(20 * time.Millisecond) {
		if status, _, body = e.call("GET", "/readyz", "", nil); status == want {
			return
		}
	}
	e.t.Fatalf("%s: /readyz %d %s for %v, want %d", when, status, body, limit, want)
}

func (e *robustEnv) seed(n int) {
	e.t.Helper()
	list := make([]store.AllowSender, n)
	for i := range list {
		list[i].Sender = fmt.Sprint(2000000 + i)
	}
	if _, err := e.sqlite.Allow(context.Background(), store.AllowParams{Scope: store.Scope{Channel: "telegram", Account: "default"},
		Senders: list, Via: store.ViaManual, Actor: store.Actor{Name: "test"}, Now: time.Now()}); err != nil {
		e.t.Fatal(err)
	}
}

// /readyz is red whenever the store cannot both read and write, and green
// again by itself when it can (it stayed green through all of these).
func TestReadyzTellsTheTruth(t *testing.T) {
	t.Run("full disk", func(t *testing.T) {
		e := newRobustEnv(t, robustOptions{dir: fault.Tmpfs(t, 4<<20)})
		e.seed(500)
		e.waitReady(http.StatusOK, time.Second, "with room")
		release := fault.Fill(t, filepath.Dir(e.path))
		e.waitReady(http.StatusServiceUnavailable, 3*time.Second, "with the disk full")
		release()
		e.waitReady(http.StatusOK, 3*time.Second, "once there is room again")
	})
	t.Run("damaged page", func(t *testing.T) {
		dir := t.TempDir()
		// A home in use: 20,000 senders, checkpointed into the file.
		st, err := sqlite.Open(context.Background(), sqlite.Options{Path: dir + "/pairgate.db"})
		if err != nil {
			t.Fatal(err)
		}
		(&robustEnv{t: t, sqlite: st}).seed(20000)
		st.Close()
		e := newRobustEnv(t, robustOptions{dir: dir, storeOptions: func(o *sqlite.Options) { o.IntegrityCheck = 100 * time.Millisecond }})
		e.waitReady(http.StatusOK, time.Second, "before the damage")
		repair := fault.DamageLeaf(t, e.path, "allowed")
		e.waitReady(http.StatusServiceUnavailable, 3*time.Second, "with a damaged page")
		status, hdr, body := e.call("GET", "/v1/pairing/allowed?channel=telegram", robustAdmin, nil)
		wantError(t, "listing a damaged allowlist", status, hdr, body, http.StatusServiceUnavailable, "unavailable")
		repair()
		e.waitReady(http.StatusOK, 10*time.Second, "once the page is repaired")
	})
	t.Run("unlinked file", func(t *testing.T) {
		e := newRobustEnv(t, robustOptions{})
		if err := os.Remove(e.path); err != nil {
			t.Fatal(err)
		}
		e.waitReady(http.StatusServiceUnavailable, time.Second, "with the file unlinked")
		status, hdr, body := e.call("POST", "/v1/pairing/allow", robustAdmin, []byte(`{"channel":"telegram","sender":"5"}`))
		wantError(t, "allow with the file unlinked", status, hdr, body, http.StatusServiceUnavailable, "unavailable")
	})
	t.Run("removed and restored", func(t *testing.T) {
		e := newRobustEnv(t, robustOptions{})
		if err := os.Rename(e.path, e.path+".aside"); err != nil {
			t.Fatal(err)
		}
		e.waitReady(http.StatusServiceUnavailable, time.Second, "with the file moved aside")
		if err := os.Rename(e.path+".aside", e.path); err != nil {
			t.Fatal(err)
		}
		e.waitReady(http.StatusOK, 2*time.Second, "with the file back")
		status, _, body := e.call("POST", "/v1/pairing/allow", robustAdmin, []byte(`{"channel":"telegram","sender":"5"}`))
		if status != http.StatusOK {
			t.Errorf("allow with the file back: %d %s", status, body)
		}
	})
}
