package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// A consumer's first run starts at the head and records it; later runs go
// on from the cursor, however the log has grown.
func TestStartCursor(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	allow := func(sender string) {
		t.Helper()
		if _, err := st.Allow(ctx, store.AllowParams{Scope: store.Scope{Channel: "telegram", Account: "default"},
			Senders: []store.AllowSender{{Sender: sender}}, Via: store.ViaManual, Actor: store.Actor{Name: "test"}, Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	allow("1")
	allow("2")
	seq, err := store.StartCursor(ctx, st, "consumer", store.FollowOptions{})
	if err != nil || seq != 2 {
		t.Fatalf("first StartCursor = %d, %v; want the head, 2", seq, err)
	}
	if got, found, err := st.Cursor(ctx, "consumer"); err != nil || !found || got != 2 {
		t.Errorf("the cursor after the first run: %d, %v, %v; want 2 recorded", got, found, err)
	}
	allow("3")
	if seq, err := store.StartCursor(ctx, st, "consumer", store.FollowOptions{}); err != nil || seq != 2 {
		t.Errorf("StartCursor again = %d, %v; want the cursor, 2", seq, err)
	}
	st.Close()
	var failures int
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := store.StartCursor(cctx, st, "other", store.FollowOptions{Retry: 10 * time.Millisecond,
		OnError: func(error) { failures++ }}); err == nil || failures == 0 {
		t.Errorf("StartCursor on a closed store: %v after %d failures; want retries until the context ends", err, failures)
	}
}
