package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
)

// countingStore counts Changes calls.
type countingStore struct {
	store.Store
	n atomic.Int64
}

func (s *countingStore) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	s.n.Add(1)
	return s.Store.Changes(ctx, after, limit)
}

// Retention may prune every change (a quiet installation whose consumers
// are caught up). The log's position is still the last number handed out:
// Head and ScanAllowed return it, Changes from it works, and a follower
// started from Head gets the next change and does not spin.
func testRetentionPrunedAll(t *testing.T, b Backend) {
	f := newFixture(t, b)
	for i := range 3 {
		f.allow(tg, fmt.Sprint(i), alice, at(0))
	}
	if err := f.s.SetCursor(f.ctx, "events", 3, at(0)); err != nil {
		t.Fatal(err)
	}
	if res, err := f.s.GarbageCollect(f.ctx, at(48*hour), store.GCPolicy{Retention: hour}); err != nil || res.Changes < 2 {
		t.Fatalf("GarbageCollect = %+v, %v; want at least 2 of the 3 old changes pruned", res, err)
	}
	head, err := store.Head(f.ctx, f.s, store.FollowOptions{})
	if err != nil || head != 3 {
		t.Errorf("Head with every change pruned = %d, %v; want 3, the last Seq handed out", head, err)
	}
	seq, err := f.s.ScanAllowed(f.ctx, func(store.Scope, string) error { return nil })
	if err != nil || seq != 3 {
		t.Errorf("ScanAllowed with every change pruned = %d, %v; want 3", seq, err)
	}
	if _, err := f.s.Changes(f.ctx, head, 10); err != nil {
		t.Errorf("Changes(Head = %d): %v", head, err)
	}
	cs := &countingStore{Store: f.s}
	fl := f.follow(cs, store.FollowOptions{After: head, OnCompacted: func(ctx context.Context) (int64, error) {
		return f.s.ScanAllowed(ctx, func(store.Scope, string) error { return nil })
	}})
	f.allow(tg, "3", alice, at(48*hour))
	got := fl.waitFor(4, 2*time.Second)
	fl.stop()
	if !got {
		t.Errorf("a follower from Head did not get Seq 4 within 2s")
	}
	if n := cs.n.Load(); n > 50 {
		t.Errorf("the follower called Changes %d times: it spins on ErrCompacted", n)
	}
}
