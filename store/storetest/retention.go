package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

// headSpy is a store whose RecentChanges (what store.Head reads) says when
// it first returned.
type headSpy struct {
	store.Store
	once sync.Once
	read chan struct{}
}

func (s *headSpy) RecentChanges(ctx context.Context, q store.ChangeQuery) ([]store.Change, error) {
	cs, err := s.Store.RecentChanges(ctx, q)
	s.once.Do(func() { close(s.read) })
	return cs, err
}

// Retention prunes the changes older than now-Retention, never past the
// lowest live cursor (a stale one no longer counts), and the log says so:
// Changes before the pruned mark is ErrCompacted, from the mark on it
// works, and sequence numbers go on. store.Follow gets past a pruned
// position through OnCompacted, or from the head without it.
func testRetention(t *testing.T, b Backend) {
	f := newFixture(t, b)
	// Ten changes, one a minute: Seq k at k-1 minutes.
	for i := range 10 {
		f.allow(tg, fmt.Sprint(i), alice, at(time.Duration(i)*minute))
	}
	gc := func(now time.Time, p store.GCPolicy, want int) {
		t.Helper()
		res, err := f.s.GarbageCollect(f.ctx, now, p)
		if err != nil {
			t.Fatalf("GarbageCollect(%v, %+v): %v", now, p, err)
		}
		if res != (store.GCResult{Changes: want}) {
			t.Errorf("GarbageCollect(%s, %+v) = %+v, want only Changes: %d", now.Format(time.TimeOnly), p, res, want)
		}
	}
	// pruned checks that the log is pruned through mark and holds the
	// changes after it, up to last.
	pruned := func(mark, last int64) {
		t.Helper()
		for _, after := range []int64{0, mark - 1} {
			if after >= mark {
				continue
			}
			_, err := f.s.Changes(f.ctx, after, 10)
			wantErr(t, fmt.Sprintf("Changes(%d) with the log pruned through %d", after, mark), err, store.ErrCompacted)
		}
		cs, err := f.s.Changes(f.ctx, mark, 100)
		if err != nil {
			t.Fatalf("Changes(%d) from the pruned mark: %v", mark, err)
		}
		checkGapless(t, fmt.Sprintf("Changes(%d)", mark), cs, mark+1)
		if n := int64(len(cs)); n != last-mark {
			t.Errorf("Changes(%d) returned %d changes, want %d (%d to %d)", mark, n, last-mark, mark+1, last)
		}
		if recent, err := f.s.RecentChanges(f.ctx, store.ChangeQuery{Limit: 100}); err != nil || int64(len(recent)) != last-mark {
			t.Errorf("RecentChanges = %d changes, %v; want the %d left", len(recent), err, last-mark)
		}
	}

	// A zero Retention keeps the log.
	gc(at(1000*hour), store.GCPolicy{}, 0)
	pruned(0, 10)
	// Exactly the changes older than now-Retention go: at 1h04m, those
	// made before 0h04m (Seq 1 to 4); Seq 5, made at 0h04m, is not older.
	gc(at(hour+4*minute), store.GCPolicy{Retention: hour}, 4)
	pruned(4, 10)
	gc(at(hour+4*minute), store.GCPolicy{Retention: hour}, 0)

	// Never past the lowest live cursor: every change is old enough now,
	// but "audit" has handled only up to 6.
	set := func(name string, seq int64, now time.Time) {
		t.Helper()
		if err := f.s.SetCursor(f.ctx, name, seq, now); err != nil {
			t.Fatalf("SetCursor(%q, %d): %v", name, seq, err)
		}
	}
	set("audit", 6, at(hour+5*minute))
	set("events", 8, at(hour+5*minute))
	gc(at(2*hour), store.GCPolicy{Retention: hour}, 2)
	pruned(6, 10)

	// "events" goes on; "audit" has not moved since 1h05m. It holds
	// retention back until StaleCursor says it is gone.
	set("events", 9, at(2*hour))
	gc(at(2*hour+30*minute), store.GCPolicy{Retention: hour}, 0)
	gc(at(2*hour+30*minute), store.GCPolicy{Retention: hour, StaleCursor: 2 * hour}, 0)
	gc(at(2*hour+30*minute), store.GCPolicy{Retention: hour, StaleCursor: hour}, 3)
	pruned(9, 10)
	if seq, found, err := f.s.Cursor(f.ctx, "audit"); err != nil || seq != 6 || !found {
		t.Errorf("Cursor(audit) after retention passed it = %d, %v, %v; want 6, true: retention does not move cursors", seq, found, err)
	}
	_, err := f.s.Changes(f.ctx, 6, 10)
	wantErr(t, "Changes from the stale cursor's position", err, store.ErrCompacted)

	// Sequence numbers go on after pruning, also through a store opened
	// after it.
	f.allow(tg, "10", alice, at(3*hour))
	if _, err := f.open().Allow(f.ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: "11"}}, Via: store.ViaManual, Actor: alice, Now: at(3 * hour)}); err != nil {
		t.Fatalf("Allow through another store: %v", err)
	}
	pruned(9, 12)

	// A follower behind the pruned mark reloads through OnCompacted and
	// goes on from the position it returns, retrying a failed reload.
	t.Run("FollowOnCompacted", func(t *testing.T) {
		var calls int
		var mu sync.Mutex
		reloadErr := errors.New("snapshot failed")
		fl := f.follow(f.s, store.FollowOptions{OnCompacted: func(context.Context) (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				return 0, reloadErr
			}
			return 9, nil
		}})
		if !fl.waitFor(12, 5*time.Second) {
			t.Fatal("the follower did not get to Seq 12 within 5s")
		}
		f.allow(tg, "12", alice, at(3*hour))
		if !fl.waitFor(13, 5*time.Second) {
			t.Fatal("the follower did not get the change made after it caught up within 5s")
		}
		if err := fl.stop(); !errors.Is(err, context.Canceled) {
			t.Errorf("Follow returned %v, want context.Canceled", err)
		}
		got, errs := fl.changes()
		checkGapless(t, "the follower", got, 10)
		if len(got) != 4 {
			t.Errorf("the follower was handed %d changes, want Seq 10 to 13", len(got))
		}
		if len(errs) != 1 || !errors.Is(errs[0], reloadErr) {
			t.Errorf("OnError was told %v; want the one failed reload", errs)
		}
		if calls != 2 {
			t.Errorf("OnCompacted was called %d times, want 2 (a failure, then a reload)", calls)
		}
	})

	// The allowlist view's way: reload from ScanAllowed and go on from the
	// position it returns. Whenever the reload happened, the snapshot and
	// the changes after it make up what the store holds.
	t.Run("FollowFromSnapshot", func(t *testing.T) {
		var mu sync.Mutex
		var snapshot map[string]bool
		var position int64
		reloads := 0
		reloaded := make(chan struct{})
		fl := f.follow(f.s, store.FollowOptions{OnCompacted: func(ctx context.Context) (int64, error) {
			mu.Lock()
			defer mu.Unlock()
			reloads++
			snapshot = map[string]bool{}
			var err error
			position, err = f.s.ScanAllowed(ctx, func(scope store.Scope, sender string) error {
				snapshot[scope.String()+" "+sender] = true
				return nil
			})
			if reloads == 1 {
				close(reloaded)
			}
			return position, err
		}})
		f.allow(tgWork, "20", alice, at(4*hour))
		if _, err := f.s.Revoke(f.ctx, tg, "3", alice, at(4*hour)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		last := f.lastSeq()
		if !waitClosed(reloaded, 5*time.Second) {
			t.Fatal("OnCompacted was not called within 5s")
		}
		mu.Lock()
		covered := position >= last
		mu.Unlock()
		if !covered && !fl.waitFor(last, 5*time.Second) {
			t.Fatalf("the follower did not get to Seq %d within 5s", last)
		}
		fl.checkStopped(t, "the follower")
		got, _ := fl.changes()
		mu.Lock()
		defer mu.Unlock()
		if reloads != 1 {
			t.Errorf("OnCompacted was called %d times, want once", reloads)
		}
		if position < 9 {
			t.Errorf("ScanAllowed returned position %d, behind the pruned mark 9", position)
		}
		checkGapless(t, "the follower", got, position+1)
		view := snapshot
		for _, c := range got {
			switch {
			case c.Kind.AdmitsSender():
				view[c.Scope.String()+" "+c.Sender] = true
			case c.Kind == store.KindRevoked:
				delete(view, c.Scope.String()+" "+c.Sender)
			}
		}
		want := map[string]bool{}
		for _, e := range f.allowed(all(), false) {
			want[e.Scope.String()+" "+e.Sender] = true
		}
		if diff := cmp.Diff(want, view); diff != "" {
			t.Errorf("snapshot plus the changes after it (-store +view):\n%s", diff)
		}
	})

	// Without OnCompacted, a follower behind the mark goes on from the
	// head: it is handed what is appended after it read the head, and
	// nothing before.
	t.Run("FollowWithoutOnCompacted", func(t *testing.T) {
		spy := &headSpy{Store: f.s, read: make(chan struct{})}
		fl := f.follow(spy, store.FollowOptions{})
		if !waitClosed(spy.read, 5*time.Second) {
			t.Fatal("Follow from a pruned position did not read the head within 5s")
		}
		f.allow(tg, "30", alice, at(5*hour))
		seq := f.lastSeq()
		if !fl.waitFor(seq, 5*time.Second) {
			t.Fatalf("the follower did not get Seq %d within 5s", seq)
		}
		fl.checkStopped(t, "the follower")
		got, _ := fl.changes()
		if diff := cmp.Diff([]int64{seq}, seqs(got), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("changes handed to a follower that went on from the head (-want +got):\n%s", diff)
		}
	})
}

func seqs(cs []store.Change) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.Seq
	}
	return out
}
