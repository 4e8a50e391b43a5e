package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pairgate/pairgate/internal/pgtest"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/postgres"
)

func allow(t *testing.T, s store.Store, sender string) {
	t.Helper()
	if _, err := s.Allow(t.Context(), store.AllowParams{Scope: store.Scope{Channel: "telegram", Account: "default"},
		Senders: []store.AllowSender{{Sender: sender}}, Via: store.ViaManual, Actor: store.Actor{Name: "test"}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

// woken reports how long after a change in writer the follower's Changed
// closes, failing past limit.
func woken(t *testing.T, writer, follower store.Store, sender string, limit time.Duration) time.Duration {
	t.Helper()
	ch := follower.Changed()
	start := time.Now()
	allow(t, writer, sender)
	select {
	case <-ch:
		return time.Since(start)
	case <-time.After(limit):
		t.Fatalf("another replica's change did not wake the follower within %v", limit)
		return 0
	}
}

func mustOpen(t *testing.T, o postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A change made through one replica wakes another's followers through
// NOTIFY, long before its (here very slow) fallback poll; with notify off,
// the poll does it, within its interval.
func TestNotifyWakesOtherReplicas(t *testing.T) {
	dsn := pgtest.DSN(t)
	writer := mustOpen(t, postgres.Options{DSN: dsn})
	listening := mustOpen(t, postgres.Options{DSN: dsn, PollInterval: time.Hour})
	polling := mustOpen(t, postgres.Options{DSN: dsn, PollOnly: true})
	time.Sleep(200 * time.Millisecond) // the listener connects
	var worst time.Duration
	for i := range 20 {
		worst = max(worst, woken(t, writer, listening, fmt.Sprint(100+i), 2*time.Second))
	}
	t.Logf("NOTIFY: woken within %v (worst of 20)", worst)
	if d := woken(t, writer, polling, "200", 2*time.Second); d > 500*time.Millisecond {
		t.Errorf("poll-only replica woken after %v; want within about its 100ms interval", d)
	}
	// A poll-only replica's changes still notify the listening ones.
	woken(t, polling, listening, "201", 2*time.Second)
}

// A listening connection that is cut is reconnected, and what committed
// meanwhile is not lost: the reconnect wakes the followers, which catch up.
func TestNotifyReconnects(t *testing.T) {
	dsn := pgtest.DSN(t)
	writer := mustOpen(t, postgres.Options{DSN: dsn})
	listening := mustOpen(t, postgres.Options{DSN: dsn, PollInterval: time.Hour})
	time.Sleep(200 * time.Millisecond)
	db := pgtest.Open(t, dsn)
	kill := func() int {
		t.Helper()
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for round := range 3 {
		ch := listening.Changed()
		if n := kill(); n < 1 {
			t.Fatalf("round %d: no listening connection to cut", round)
		}
		allow(t, writer, fmt.Sprint(300+round)) // while nobody listens
		select {
		case <-ch:
		case <-time.After(3 * time.Second):
			t.Fatalf("round %d: a change made while the listener was cut never woke the follower", round)
		}
		cs, err := listening.Changes(t.Context(), 0, 100)
		if err != nil || len(cs) != 2*round+1 {
			t.Fatalf("round %d: the follower reads %d changes (%v), want %d", round, len(cs), err, 2*round+1)
		}
		time.Sleep(300 * time.Millisecond) // reconnected by now
		woken(t, writer, listening, fmt.Sprint(400+round), time.Second)
	}
}
