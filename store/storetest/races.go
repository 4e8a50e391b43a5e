package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// Goroutines on several stores race Allow of overlapping sender lists, in
// opposite orders: every sender ends up allowed once, exactly one caller
// is told Changed for each, and that caller's change is the one recorded.
// Some senders were revoked before (the race reactivates them once) and
// one has a pending request (cleared once).
func testAllowRace(t *testing.T, b Backend) {
	f := newFixture(t, b)
	stores := []store.Store{f.s, f.open(), f.open(), f.open()}
	const workers, senders, per = 8, 40, 15
	name := func(i int) string { return fmt.Sprintf("race-%02d", i) }
	for round, scope := range []store.Scope{tg, tgWork, sig} {
		now := at(10*minute + time.Duration(round)*time.Second)
		for i := range 5 {
			f.allow(scope, name(i), alice, at(0))
			if _, err := f.s.Revoke(f.ctx, scope, name(i), alice, at(0)); err != nil {
				t.Fatal(err)
			}
		}
		pending := f.mustCreate(scope, name(7), at(0))
		seq := f.lastSeq()

		lists := make([][]string, workers)
		for w := range workers {
			for k := range per {
				lists[w] = append(lists[w], name((w*5+k)%senders))
			}
			if w%2 == 1 {
				slices.Reverse(lists[w])
			}
		}
		results := make([][]store.AllowResult, workers)
		actor := func(w int) store.Actor { return store.Actor{Name: fmt.Sprint("worker-", w), Source: "cli"} }
		var wg sync.WaitGroup
		start := make(chan struct{})
		for w := range workers {
			s := stores[w%len(stores)]
			wg.Go(func() {
				<-start
				ss := make([]store.AllowSender, len(lists[w]))
				for i, sender := range lists[w] {
					ss[i] = store.AllowSender{Sender: sender}
				}
				res, err := s.Allow(f.ctx, store.AllowParams{Scope: scope, Senders: ss, Via: store.ViaManual, Actor: actor(w), Now: now})
				if err != nil {
					t.Errorf("worker %d: Allow racing: %v", w, err)
				}
				results[w] = res
			})
		}
		close(start)
		wg.Wait()
		if t.Failed() {
			return
		}

		changedBy := map[string][]int{}
		for w, res := range results {
			if len(res) != len(lists[w]) {
				t.Fatalf("worker %d: %d results for %d senders", w, len(res), len(lists[w]))
			}
			for i, r := range res {
				if r.Entry.Sender != lists[w][i] || !r.Entry.Active() {
					t.Errorf("worker %d: result %d is %+v, want the active entry of %s", w, i, r.Entry, lists[w][i])
				}
				if r.Changed {
					changedBy[r.Entry.Sender] = append(changedBy[r.Entry.Sender], w)
				}
			}
		}
		for i := range senders {
			if by := changedBy[name(i)]; len(by) != 1 {
				t.Errorf("%s: %s reported Changed by workers %v, want exactly one", scope, name(i), by)
			}
		}
		entries := f.allowed(in(scope), true)
		if len(entries) != senders {
			t.Errorf("%s: %d allow entries after the race, want %d", scope, len(entries), senders)
		}
		for _, e := range entries {
			by := changedBy[e.Sender]
			if !e.Active() || len(by) != 1 || e.ApprovedBy != actor(by[0]).Name || !e.ApprovedAt.Equal(now) {
				t.Errorf("%s: entry %+v; want active, approved at %v by the one worker told Changed (%v)", scope, e, now, by)
			}
		}

		// The log holds one KindAllowed per sender, by the worker told
		// Changed, each worker's in one run, and the pending request's
		// KindCleared by that worker just before its sender's KindAllowed.
		log := f.since(seq)
		var want []rec
		for _, c := range log {
			if c.Kind == store.KindAllowed {
				want = append(want, senderRec(store.KindAllowed, scope, c.Sender, actor(changedBy[c.Sender][0]), now))
			}
		}
		if len(want) != senders {
			t.Errorf("%s: %d KindAllowed changes, want %d", scope, len(want), senders)
		}
		got := recs(log)
		var withoutCleared []rec
		for i, r := range got {
			if r.Kind != store.KindCleared {
				withoutCleared = append(withoutCleared, r)
				continue
			}
			wantCleared := rec{Kind: store.KindCleared, Scope: scope, Sender: name(7), RequestID: pending.ID, Actor: actor(changedBy[name(7)][0]), At: now}
			if r != wantCleared || i+1 >= len(got) || got[i+1].Sender != name(7) || got[i+1].Kind != store.KindAllowed {
				t.Errorf("%s: change %+v; want %+v just before %s is allowed", scope, r, wantCleared, name(7))
			}
		}
		if diff := cmp.Diff(want, withoutCleared); diff != "" {
			t.Errorf("%s: change log after the race (-want +got):\n%s", scope, diff)
		}
		if n := len(got) - len(withoutCleared); n != 1 {
			t.Errorf("%s: %d KindCleared changes, want 1", scope, n)
		}
		runs := map[string]int{}
		prev := ""
		for _, r := range got {
			if r.Actor.Name != prev {
				runs[r.Actor.Name]++
				prev = r.Actor.Name
			}
		}
		for w, n := range runs {
			if n != 1 {
				t.Errorf("%s: the changes of %s come in %d runs; one Allow is one transaction", scope, w, n)
			}
		}
	}
}

// Goroutines on several stores race RecordApprovalFailure on one scope:
// the scope locks exactly when the count reaches MaxFailures, once (one
// caller is told the lock's end, one KindLockedOut), and the count starts
// again after it.
func testFailureRace(t *testing.T, b Backend) {
	f := newFixture(t, b)
	stores := []store.Store{f.s, f.open(), f.open(), f.open()}
	const workers, per = 8, 2
	p := store.LockoutPolicy{MaxFailures: 10, Window: hour, LockFor: 10 * minute}
	now := at(0)
	until := now.Add(p.LockFor)
	seq := f.lastSeq()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		locked int
	)
	start := make(chan struct{})
	for w := range workers {
		s := stores[w%len(stores)]
		wg.Go(func() {
			<-start
			for range per {
				u, err := s.RecordApprovalFailure(f.ctx, tg, ops, now, p)
				if err != nil {
					t.Errorf("worker %d: RecordApprovalFailure racing: %v", w, err)
					return
				}
				if !u.IsZero() {
					mu.Lock()
					locked++
					mu.Unlock()
					if !u.Equal(until) {
						t.Errorf("worker %d: locked until %v, want %v", w, u, until)
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if locked != 1 {
		t.Errorf("%d callers were told of a lock after %d failures with MaxFailures %d, want exactly 1", locked, workers*per, p.MaxFailures)
	}
	type counted struct {
		Kind store.ChangeKind
		Data store.ChangeData
	}
	var want []counted
	v := store.ChangeDataVersion
	for i := range workers * per {
		n := i%p.MaxFailures + 1
		want = append(want, counted{store.KindApproveFailed, store.ChangeData{Version: v, Failures: n, MaxFailures: p.MaxFailures}})
		if n == p.MaxFailures {
			want = append(want, counted{store.KindLockedOut, store.ChangeData{Version: v, Failures: n, Until: until.UnixMilli()}})
		}
	}
	var got []counted
	for _, c := range f.since(seq) {
		got = append(got, counted{c.Kind, c.Data})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes of the racing failures (-want +got):\n%s", diff)
	}
	ls, err := f.s.Lockouts(f.ctx, all(), now)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.Lockout{{Scope: tg, Until: until, Failures: p.MaxFailures}}, ls); diff != "" {
		t.Errorf("Lockouts after the race (-want +got):\n%s", diff)
	}
}
