package sqlite_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// Writes that queue behind one another share a COMMIT; every one that was
// acknowledged is there, and one refused (ErrPending) takes nothing of the
// others with it.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "pairgate.db")
	s := mustOpen(t, sqlite.Options{Path: path})
	now := time.Now()
	req := func(sender string) store.CreateRequestParams {
		return store.CreateRequestParams{Request: store.Request{ID: "req_" + sender, Scope: tg, Sender: sender,
			CodeHash: []byte("hash of " + sender), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, MaxPending: 1 << 20,
			Actor: store.Actor{Name: "gate"}}
	}
	const writers, each = 16, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	created, refused := 0, 0
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				sender := fmt.Sprint(1000*w + i)
				if i%5 == 4 {
					sender = fmt.Sprint(1000*w + i - 1) // the one before again: ErrPending
				}
				_, err := s.CreateRequest(ctx, req(sender))
				mu.Lock()
				switch {
				case err == nil:
					created++
				case errors.Is(err, store.ErrPending):
					refused++
				default:
					t.Errorf("CreateRequest(%s): %v", sender, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if want := writers * each * 4 / 5; created != want || refused != writers*each/5 {
		t.Fatalf("%d created and %d refused, want %d and %d", created, refused, want, writers*each/5)
	}
	commits, writes := s.CommitStats()
	if writes != int64(created) {
		t.Errorf("the writer committed %d writes, want the %d created", writes, created)
	}
	if commits >= writes {
		t.Errorf("%d COMMITs for %d writes from %d writers: want writes to share commits", commits, writes, writers)
	}
	t.Logf("%d writes in %d commits (%.1f a commit)", writes, commits, float64(writes)/float64(commits))
	// Every acknowledged write is in the file, as another process reads it.
	other := mustOpen(t, sqlite.Options{Path: path})
	list, err := other.ListRequests(ctx, store.RequestFilter{}, now)
	if err != nil || len(list) != created {
		t.Fatalf("another store reads %d requests (%v), want %d", len(list), err, created)
	}
	seq, _ := other.RecentChanges(ctx, store.ChangeQuery{Limit: 1})
	if len(seq) != 1 || seq[0].Seq != int64(created) {
		t.Errorf("the change log's head is %+v, want seq %d: a refused write must take its number back", seq, created)
	}
}

// Alone, a write commits at once: it never waits for company.
func TestGroupCommitAlone(t *testing.T) {
	for _, maxBatch := range []int{0, 1} {
		s := mustOpen(t, sqlite.Options{Path: filepath.Join(t.TempDir(), "pairgate.db"), MaxBatch: maxBatch})
		for i := range 20 {
			start := time.Now()
			if err := allow(t.Context(), s, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("a write alone took %v", d)
			}
		}
		if commits, writes := s.CommitStats(); commits != 20 || writes != 20 {
			t.Errorf("MaxBatch %d: 20 writes one after another made %d commits of %d writes, want 20 of 20", maxBatch, commits, writes)
		}
	}
}
