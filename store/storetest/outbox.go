package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

// The change log as an outbox: commit order under concurrent writers,
// no gaps when writes roll back, cursors and typed payloads.

// follower runs store.Follow in the background and keeps every change it
// is handed, in order.
type follower struct {
	mu     sync.Mutex
	got    []store.Change
	errs   []error
	grew   chan struct{} // closed and replaced when got grows
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// follow starts store.Follow on s with o (Retry 20ms unless set; OnError
// collects), stopped at cleanup at the latest.
func (f *fixture) follow(s store.Store, o store.FollowOptions) *follower {
	ctx, cancel := context.WithCancel(f.ctx)
	fl := &follower{grew: make(chan struct{}), cancel: cancel, done: make(chan error, 1)}
	if o.Retry == 0 {
		o.Retry = 20 * ms
	}
	onError := o.OnError
	o.OnError = func(err error) {
		fl.mu.Lock()
		fl.errs = append(fl.errs, err)
		fl.mu.Unlock()
		if onError != nil {
			onError(err)
		}
	}
	go func() { fl.done <- store.Follow(ctx, s, o, fl.handle) }()
	f.t.Cleanup(func() { fl.stop() })
	return fl
}

func (fl *follower) handle(cs []store.Change) error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.got = append(fl.got, cs...)
	close(fl.grew)
	fl.grew = make(chan struct{})
	return nil
}

// waitFor waits up to d until the follower was handed the change seq (or
// a later one), and reports whether it was.
func (fl *follower) waitFor(seq int64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		fl.mu.Lock()
		reached := len(fl.got) > 0 && fl.got[len(fl.got)-1].Seq >= seq
		grew := fl.grew
		fl.mu.Unlock()
		if reached {
			return true
		}
		if !waitClosed(grew, time.Until(deadline)) {
			return false
		}
	}
}

// stop ends Follow and returns what it returned: context.Canceled when it
// ran until stopped.
func (fl *follower) stop() error {
	fl.once.Do(func() {
		fl.cancel()
		fl.err = <-fl.done
	})
	return fl.err
}

// changes returns what the follower was handed so far, and the errors it
// was told of.
func (fl *follower) changes() ([]store.Change, []error) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return append([]store.Change(nil), fl.got...), append([]error(nil), fl.errs...)
}

// checkStopped stops fl and fails unless Follow returned context.Canceled
// without having been told of an error.
func (fl *follower) checkStopped(t *testing.T, what string) {
	t.Helper()
	if err := fl.stop(); !errors.Is(err, context.Canceled) {
		t.Errorf("%s: Follow returned %v, want context.Canceled", what, err)
	}
	if _, errs := fl.changes(); len(errs) > 0 {
		t.Errorf("%s: Follow was told of %d errors, the first: %v", what, len(errs), errs[0])
	}
}

// checkGapless fails unless cs are numbered first, first+1, … with no gap
// and no repeat.
func checkGapless(t *testing.T, what string, cs []store.Change, first int64) {
	t.Helper()
	for i, c := range cs {
		if want := first + int64(i); c.Seq != want {
			t.Errorf("%s: change %d of %d has Seq %d, want %d (a gap, a repeat or out of order)", what, i+1, len(cs), c.Seq, want)
			return
		}
	}
}

// change is what identifies one change a writer made.
type change struct {
	Kind      store.ChangeKind
	Scope     store.Scope
	Sender    string
	RequestID string
	At        time.Time
}

func changeOf(c store.Change) change {
	return change{Kind: c.Kind, Scope: c.Scope, Sender: c.Sender, RequestID: c.RequestID, At: c.At}
}

// Writers on several stores of one database (several connections on
// SQLite, several pools on PostgreSQL) race to append; followers tail the
// log meanwhile. Sequence numbers must commit in order: a follower reading
// seq > after never skips a change that commits late, so it sees every
// change exactly once, numbered without gaps, and nothing else. Every
// writer also keeps provoking a write that appends (expiring two requests)
// and then rolls back (ErrCapReached): its numbers must be given back.
func testCommitOrder(t *testing.T, b Backend) {
	// 8 writers × 60 rounds × (an Allow of 19 senders, a failed approval,
	// a request in a scope of its own, a refused request) = 10,080
	// changes: the issue's 10,000, and more than GCBatch for the pruning
	// below. -short makes 1,344, -race 336.
	const batch = 19
	const perRound = batch + 2
	writers, rounds := 8, 60
	switch {
	case raceEnabled:
		// Under the race detector a SQLite writer waiting for the lock
		// (busy_timeout polls, it does not queue) can starve past the
		// 10s busy timeout behind 7 others; races show with fewer.
		writers, rounds = 4, 4
	case testing.Short():
		rounds = 8
	}
	f := newFixture(t, b)
	stores := make([]store.Store, writers)
	for w := range stores {
		stores[w] = f.open()
	}

	// The trap: two expired and two live requests, so that a request with
	// MaxPending 2 expires two (appending two records) before it finds the
	// scope full and rolls back.
	trap := store.Scope{Channel: "commit", Account: "trap"}
	var trapIDs []string
	for i, created := range []time.Duration{0, 0, 30 * time.Second, 30 * time.Second} {
		r := f.request(trap, fmt.Sprint("t", i), at(created))
		if i < 2 {
			r.ExpiresAt = at(minute)
		}
		f.create(r, 100)
		trapIDs = append(trapIDs, r.ID)
	}
	base := f.lastSeq()

	// One follower is woken by its own store's polls only; the other
	// follows the store of writer 0, so it is also woken at each of that
	// writer's commits, reading while the others are mid-transaction.
	polled := f.follow(f.s, store.FollowOptions{After: base})
	eager := f.follow(stores[0], store.FollowOptions{After: base})

	made := make([][][]change, writers) // per writer, per call, the changes it made
	slowest := make([]time.Duration, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	begin := time.Now()
	for w := range writers {
		s := stores[w]
		wg.Go(func() {
			<-start
			scope := store.Scope{Channel: "commit", Account: fmt.Sprint("w", w)}
			never := store.LockoutPolicy{MaxFailures: 1 << 30, Window: hour, LockFor: hour}
			for i := range rounds {
				began := time.Now()
				now := at(2*minute + time.Duration(i)*time.Second)
				senders := make([]store.AllowSender, batch)
				var allowed []change
				for j := range senders {
					senders[j] = store.AllowSender{Sender: fmt.Sprintf("%d-%d-%d", w, i, j)}
					allowed = append(allowed, change{Kind: store.KindAllowed, Scope: scope, Sender: senders[j].Sender, At: now})
				}
				res, err := s.Allow(f.ctx, store.AllowParams{Scope: scope, Senders: senders, Via: store.ViaImport, Actor: alice, Now: now})
				if err != nil || len(res) != batch {
					t.Errorf("writer %d: Allow of %d senders: %d results, %v", w, batch, len(res), err)
					return
				}
				made[w] = append(made[w], allowed)

				if _, err := s.RecordApprovalFailure(f.ctx, scope, ops, now, never); err != nil {
					t.Errorf("writer %d: RecordApprovalFailure: %v", w, err)
					return
				}
				made[w] = append(made[w], []change{{Kind: store.KindApproveFailed, Scope: scope, At: now}})

				id := fmt.Sprintf("req_commit_%d_%d", w, i)
				r := store.Request{ID: id, Scope: store.Scope{Channel: "commit", Account: id}, Sender: "s", CodeHash: hash(id),
					CreatedAt: now, ExpiresAt: now.Add(ttl)}
				if _, err := s.CreateRequest(f.ctx, store.CreateRequestParams{Request: r, MaxPending: 3, Actor: gate}); err != nil {
					t.Errorf("writer %d: CreateRequest(%s): %v", w, id, err)
					return
				}
				made[w] = append(made[w], []change{{Kind: store.KindRequested, Scope: r.Scope, Sender: r.Sender, RequestID: id, At: now}})

				id = fmt.Sprintf("req_trap_%d_%d", w, i)
				r = store.Request{ID: id, Scope: trap, Sender: id, CodeHash: hash(id), CreatedAt: now, ExpiresAt: now.Add(ttl)}
				if _, err := s.CreateRequest(f.ctx, store.CreateRequestParams{Request: r, MaxPending: 2, Actor: gate}); !errors.Is(err, store.ErrCapReached) {
					t.Errorf("writer %d: CreateRequest(%s) into the full trap scope: %v, want ErrCapReached", w, id, err)
					return
				}
				slowest[w] = max(slowest[w], time.Since(began))
			}
		})
	}
	close(start)
	wg.Wait()
	wrote := time.Since(begin)
	if t.Failed() {
		return
	}
	total := writers * rounds * perRound
	last := f.lastSeq()
	if last != base+int64(total) {
		t.Errorf("newest Seq %d after %d changes from %d: want %d", last, total, base, base+int64(total))
	}
	for _, fl := range []*follower{polled, eager} {
		if !fl.waitFor(last, 20*time.Second) {
			t.Errorf("a follower did not reach Seq %d within 20s", last)
		}
	}
	polled.checkStopped(t, "the polled follower")
	eager.checkStopped(t, "the eager follower")
	t.Logf("%d writers made %d changes in %v (the slowest round of 4 calls: %v); followers caught up %v later",
		writers, total, wrote.Round(time.Millisecond), slices.Max(slowest).Round(time.Millisecond),
		(time.Since(begin) - wrote).Round(time.Millisecond))

	log := f.since(base)
	for name, fl := range map[string]*follower{"polled": polled, "eager": eager} {
		got, _ := fl.changes()
		checkGapless(t, "the "+name+" follower", got, base+1)
		if len(got) != total {
			t.Errorf("the %s follower was handed %d changes, want %d", name, len(got), total)
		}
		if !cmp.Equal(log, got) {
			t.Errorf("the %s follower was handed other changes than the log holds after the writers finished", name)
		}
	}
	checkGapless(t, "the log", log, base+1)

	// The changes are exactly those the writers made: each once, each
	// writer's in the order it made them, each Allow's in one run.
	seqOf := make(map[change]int64, len(log))
	for _, c := range log {
		k := changeOf(c)
		if prev, dup := seqOf[k]; dup {
			t.Errorf("change %+v recorded twice, as %d and %d", k, prev, c.Seq)
		}
		seqOf[k] = c.Seq
	}
	n := 0
	for w := range made {
		prev := int64(0)
		for _, call := range made[w] {
			for j, k := range call {
				n++
				seq, ok := seqOf[k]
				switch {
				case !ok:
					t.Errorf("writer %d made %+v, but the log does not hold it", w, k)
				case seq <= prev && j == 0:
					t.Errorf("writer %d: %+v has Seq %d, not after its previous change (%d)", w, k, seq, prev)
				case j > 0 && seq != prev+1:
					t.Errorf("writer %d: %+v has Seq %d; one Allow's changes must be consecutive (previous %d)", w, k, seq, prev)
				}
				prev = seq
			}
		}
	}
	if n != len(log) {
		t.Errorf("the writers made %d changes; the log holds %d", n, len(log))
	}
	if t.Failed() {
		return
	}

	// The log is longer than GCBatch: one GarbageCollect prunes GCBatch
	// changes, the next the rest. The requests expire now (recorded), and
	// the trap's two expired requests are among them: every refused
	// request had expired them only in a transaction that rolled back.
	t.Run("PruneInBatches", func(t *testing.T) {
		if total <= store.GCBatch {
			t.Skipf("-short or -race: %d changes, no more than GCBatch (%d)", total, store.GCBatch)
		}
		now := at(3 * hour)
		p := store.GCPolicy{Retention: hour}
		res, err := f.s.GarbageCollect(f.ctx, now, p)
		if err != nil {
			t.Fatalf("GarbageCollect: %v", err)
		}
		old := int(last)
		expired := writers*rounds + len(trapIDs)
		if want := (store.GCResult{Requests: expired, Changes: store.GCBatch}); res != want {
			t.Errorf("first GarbageCollect = %+v, want %+v", res, want)
		}
		_, err = f.s.Changes(f.ctx, store.GCBatch-1, 1)
		wantErr(t, fmt.Sprintf("Changes(%d) after pruning through %d", store.GCBatch-1, store.GCBatch), err, store.ErrCompacted)
		if cs, err := f.s.Changes(f.ctx, store.GCBatch, 1); err != nil || len(cs) != 1 || cs[0].Seq != store.GCBatch+1 {
			t.Errorf("Changes(%d, 1) = %v, %v; want change %d", store.GCBatch, cs, err, store.GCBatch+1)
		}
		res, err = f.s.GarbageCollect(f.ctx, now, p)
		if want := (store.GCResult{Changes: old - store.GCBatch}); err != nil || res != want {
			t.Errorf("second GarbageCollect = %+v, %v; want %+v", res, err, want)
		}
		if res, err := f.s.GarbageCollect(f.ctx, now, p); err != nil || res != (store.GCResult{}) {
			t.Errorf("third GarbageCollect = %+v, %v; want nothing left to do", res, err)
		}
		_, err = f.s.Changes(f.ctx, int64(old-1), 1)
		wantErr(t, fmt.Sprintf("Changes(%d) after pruning through %d", old-1, old), err, store.ErrCompacted)
		rest := f.since(int64(old))
		checkGapless(t, "the log after pruning", rest, int64(old)+1)
		wantExpired := map[string]bool{}
		for _, id := range trapIDs {
			wantExpired[id] = true
		}
		for w := range writers {
			for i := range rounds {
				wantExpired[fmt.Sprintf("req_commit_%d_%d", w, i)] = true
			}
		}
		gotExpired := map[string]bool{}
		for _, c := range rest {
			if c.Kind != store.KindExpired || !c.At.Equal(now) || gotExpired[c.RequestID] {
				t.Errorf("after pruning: change %d %s of %s at %v; want each request expired once, at %v", c.Seq, c.Kind, c.RequestID, c.At, now)
			}
			gotExpired[c.RequestID] = true
		}
		if diff := cmp.Diff(wantExpired, gotExpired); diff != "" {
			t.Errorf("requests recorded as expired (-want +got):\n%s", diff)
		}
	})
}

// A refused write appends nothing and takes no sequence number, also when
// it appended before it was refused (CreateRequest expires requests first
// and then finds the scope full, the sender pending or allowed, or the code
// in use; RotateSigningKey retires and drops keys before it finds the
// number kept): after each call the newest Seq is exactly as many changes
// on as the call made, and the log stays gapless.
func testGapless(t *testing.T, b Backend) {
	f := newFixture(t, b)
	// Two requests that expire at 1m and two live ones: a CreateRequest at
	// 2m expires two before it decides.
	var live []store.Request
	for i, created := range []time.Duration{0, 0, 30 * time.Second, 30 * time.Second} {
		r := f.request(tg, fmt.Sprint(i), at(created))
		if i < 2 {
			r.ExpiresAt = at(minute)
		}
		r = f.create(r, 100)
		if i >= 2 {
			live = append(live, r)
		}
	}
	f.allow(tg, "allowed", alice, at(0))
	if _, err := f.s.RecordApprovalFailure(f.ctx, sig, ops, at(0), store.LockoutPolicy{MaxFailures: 1, Window: hour, LockFor: hour}); err != nil {
		t.Fatal(err)
	}
	lockedReq := f.mustCreate(sig, "s", at(0))
	if err := f.s.CreateToken(f.ctx, token("tok_a", store.ScopeAdmin, at(0)), alice); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RotateSigningKey(f.ctx, key(1, at(0)), at(-hour), alice); err != nil {
		t.Fatal(err)
	}
	used := f.issue("used", at(0))
	dr := deviceRequest("gapless", at(0))
	if err := f.s.CreateDeviceRequest(f.ctx, dr, used.ID, gate); err != nil {
		t.Fatal(err)
	}

	now := at(2 * minute)
	newReq := func(sender string, maxPending int, code []byte) func() error {
		return func() error {
			r := f.request(tg, sender, now)
			if code != nil {
				r.CodeHash = code
			}
			_, err := f.tryCreate(r, maxPending)
			return err
		}
	}
	steps := []struct {
		what    string
		changes int   // appended by the call
		want    error // nil: it succeeds; errAny: any error
		do      func() error
	}{
		{"CreateRequest into a full scope", 0, store.ErrCapReached, newReq("new", 2, nil)},
		{"CreateRequest of a pending sender", 0, store.ErrPending, newReq(live[0].Sender, 100, nil)},
		{"CreateRequest with a live code", 0, store.ErrCodeConflict, newReq("new", 100, live[0].CodeHash)},
		{"CreateRequest of an allowed sender", 0, store.ErrAllowed, newReq("allowed", 100, nil)},
		{"Allow of three senders", 3, nil, func() error {
			_, err := f.s.Allow(f.ctx, store.AllowParams{Scope: tgWork, Senders: []store.AllowSender{{Sender: "a"}, {Sender: "b"}, {Sender: "c"}},
				Via: store.ViaImport, Actor: alice, Now: now})
			return err
		}},
		{"Approve in a locked scope", 0, store.ErrLockedOut, func() error {
			_, err := f.s.Approve(f.ctx, by(store.ViaCode, lockedReq, alice, now))
			return err
		}},
		{"Approve of an unknown code", 0, store.ErrNotFound, func() error {
			_, err := f.s.Approve(f.ctx, store.ApproveParams{Scope: tg, CodeHash: hash("unknown"), Actor: alice, Now: now})
			return err
		}},
		{"Approve", 1, nil, func() error {
			_, err := f.s.Approve(f.ctx, by(store.ViaCode, live[0], alice, now))
			return err
		}},
		{"Approve again", 0, store.ErrAlreadyApproved, func() error {
			_, err := f.s.Approve(f.ctx, by(store.ViaRequest, live[0], alice, now))
			return err
		}},
		{"Reject of an approved request", 0, store.ErrAlreadyApproved, func() error {
			_, err := f.s.Reject(f.ctx, by(store.ViaCode, live[0], alice, now))
			return err
		}},
		{"Allow of an allowed and a new sender", 1, nil, func() error {
			_, err := f.s.Allow(f.ctx, store.AllowParams{Scope: tgWork, Senders: []store.AllowSender{{Sender: "a"}, {Sender: "d"}},
				Via: store.ViaManual, Actor: alice, Now: now})
			return err
		}},
		{"Revoke of an unknown sender", 0, store.ErrNotFound, func() error {
			_, err := f.s.Revoke(f.ctx, tg, "unknown", alice, now)
			return err
		}},
		{"Unlock of a scope not locked", 0, store.ErrNotFound, func() error {
			_, err := f.s.Unlock(f.ctx, tgWork, alice, now)
			return err
		}},
		{"CreateToken with a taken id", 0, errAny, func() error {
			return f.s.CreateToken(f.ctx, token("tok_a", store.ScopeGateway, now), alice)
		}},
		{"RevokeToken of an unknown token", 0, store.ErrNotFound, func() error {
			_, err := f.s.RevokeToken(f.ctx, "tok_unknown", alice, now)
			return err
		}},
		{"RotateSigningKey to a kept number", 0, store.ErrKeyInUse, func() error {
			return f.s.RotateSigningKey(f.ctx, key(1, now), at(-hour), alice)
		}},
		{"CreateDeviceRequest with a used token", 0, store.ErrTokenUsed, func() error {
			return f.s.CreateDeviceRequest(f.ctx, deviceRequest("again", now), used.ID, gate)
		}},
		{"CreateDeviceRequest with an unknown token", 0, store.ErrNotFound, func() error {
			return f.s.CreateDeviceRequest(f.ctx, deviceRequest("again", now), "00", gate)
		}},
		{"DeliverDeviceToken before approval", 0, store.ErrNotFound, func() error {
			_, err := f.s.DeliverDeviceToken(f.ctx, dr.ID, tokenHashOf("t"), now)
			return err
		}},
		{"DecideDeviceRequest", 1, nil, func() error {
			_, err := f.s.DecideDeviceRequest(f.ctx, dr.ID, true, alice, now)
			return err
		}},
		{"DecideDeviceRequest again", 0, store.ErrNotFound, func() error {
			_, err := f.s.DecideDeviceRequest(f.ctx, dr.ID, false, alice, now)
			return err
		}},
		{"RevokeDevice of an unknown device", 0, store.ErrNotFound, func() error {
			_, err := f.s.RevokeDevice(f.ctx, "unknown", alice, now)
			return err
		}},
		{"RemoveDevice of an unknown device", 0, store.ErrNotFound, func() error {
			return f.s.RemoveDevice(f.ctx, "unknown", alice, now)
		}},
		// The two requests every refused CreateRequest expired are still
		// there to expire: the refusals rolled their expiry back.
		{"ExpireRequests", 2, nil, func() error {
			n, err := f.s.ExpireRequests(f.ctx, now)
			if err == nil && n != 2 {
				err = fmt.Errorf("expired %d requests, want the 2 the refusals left", n)
			}
			return err
		}},
		{"CreateRequest", 1, nil, newReq("new", 100, nil)},
	}
	for _, s := range steps {
		before := f.lastSeq()
		err := s.do()
		switch {
		case s.want == nil && err != nil:
			t.Errorf("%s: %v", s.what, err)
		case s.want == errAny && err == nil, s.want != nil && s.want != errAny && !errors.Is(err, s.want):
			t.Errorf("%s: error %v, want %v", s.what, err, s.want)
		}
		if got := f.lastSeq(); got != before+int64(s.changes) {
			t.Errorf("%s: newest Seq %d → %d, want %d changes on", s.what, before, got, s.changes)
		}
	}
	checkGapless(t, "the log", f.since(0), 1)
}

// errAny stands for "some error" in a table of wanted errors.
var errAny = errors.New("any error")

// Cursors are durable positions by name: unknown until set, never moved
// back, one per name, shared by every store on the database; setting one
// appends no change and wakes no follower.
func testCursors(t *testing.T, b Backend) {
	f := newFixture(t, b)
	cursor := func(s store.Store, name string) (int64, bool) {
		t.Helper()
		seq, found, err := s.Cursor(f.ctx, name)
		if err != nil {
			t.Fatalf("Cursor(%q): %v", name, err)
		}
		return seq, found
	}
	if seq, found := cursor(f.s, "events"); seq != 0 || found {
		t.Errorf("Cursor of an unknown name = %d, %v; want 0, false", seq, found)
	}
	for i := range 5 {
		f.allow(tg, fmt.Sprint(i), alice, at(time.Duration(i)*minute))
	}
	head := f.lastSeq()

	// A store opened now has nothing new to tell its followers: whatever
	// closes its Changed channel from here on came from the calls below.
	s := f.open()
	woken := s.Changed()
	set := func(name string, seq int64, now time.Time) {
		t.Helper()
		if err := s.SetCursor(f.ctx, name, seq, now); err != nil {
			t.Fatalf("SetCursor(%q, %d): %v", name, seq, err)
		}
	}
	for _, c := range []struct {
		name string
		set  int64
		want int64
	}{
		{"events", 3, 3},
		{"events", 1, 3}, // never back
		{"events", 3, 3},
		{"audit", 0, 0}, // a position of 0 is a position
		{"events", 4, 4},
		{"audit", 2, 2},
		{"events", 2, 4},
	} {
		set(c.name, c.set, at(hour))
		for _, st := range []store.Store{s, f.s} {
			if seq, found := cursor(st, c.name); seq != c.want || !found {
				t.Errorf("Cursor(%q) after SetCursor(%q, %d) = %d, %v; want %d, true", c.name, c.name, c.set, seq, found, c.want)
			}
		}
	}
	if seq, found := cursor(f.s, "metrics"); seq != 0 || found {
		t.Errorf("Cursor of a name never set, beside others = %d, %v; want 0, false", seq, found)
	}
	if got := f.lastSeq(); got != head {
		t.Errorf("SetCursor moved the newest Seq from %d to %d: it appends no change", head, got)
	}
	f.checkChanges("SetCursor", head)
	// Several polls go by without a wake-up.
	if waitClosed(woken, 3*notifyLatency/10) {
		t.Error("SetCursor closed the Changed channel of its store: a cursor is no change")
	}
}

// Every change kind with a typed payload reads it back exactly as written,
// at ChangeDataVersion, with the fields store.ChangeData documents for the
// kind; kinds without a payload read back a zero ChangeData. Text goes in
// with quotes, backslashes, newlines and non-ASCII, since the payload is
// JSON.
func testPayloads(t *testing.T, b Backend) {
	f := newFixture(t, b)
	v := store.ChangeDataVersion
	type kd struct {
		Kind store.ChangeKind
		Data store.ChangeData
	}
	var want []kd
	add := func(k store.ChangeKind, d store.ChangeData) { want = append(want, kd{k, d}) }
	requested := func(r store.Request) store.ChangeData {
		return store.ChangeData{Version: v, Name: r.Name, Expires: r.ExpiresAt.UnixMilli()}
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	r1 := f.mustCreate(tg, "1", at(0))
	add(store.KindRequested, requested(r1))
	p := by(store.ViaCode, r1, alice, at(minute))
	p.Notify = true
	f.approve(p)
	add(store.KindApproved, store.ChangeData{Version: v, Via: store.ViaCode, Notify: true})
	r2 := f.mustCreate(tg, "2", at(0))
	add(store.KindRequested, requested(r2))
	f.approve(by(store.ViaRequest, r2, alice, at(minute)))
	add(store.KindApproved, store.ChangeData{Version: v, Via: store.ViaRequest})
	r3 := f.mustCreate(tg, "3", at(0))
	add(store.KindRequested, requested(r3))
	_, err := f.s.Reject(f.ctx, by(store.ViaCode, r3, alice, at(minute)))
	must("Reject", err)
	add(store.KindRejected, store.ChangeData{})

	f.allow(tg, "4", alice, at(2*minute))
	add(store.KindAllowed, store.ChangeData{Version: v, Via: store.ViaManual})
	rq1 := f.mustCreate(tg, "5", at(2*minute))
	add(store.KindRequested, requested(rq1))
	_, err = f.s.Allow(f.ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: "5", Name: "Zoë \"5\"\n\\"}}, Via: store.ViaImport, Actor: alice, Now: at(3 * minute)})
	must("Allow of a pending sender", err)
	add(store.KindCleared, store.ChangeData{})
	add(store.KindAllowed, store.ChangeData{Version: v, Via: store.ViaImport})
	_, err = f.s.Revoke(f.ctx, tg, "4", alice, at(4*minute))
	must("Revoke", err)
	add(store.KindRevoked, store.ChangeData{})
	rq2 := f.mustCreate(tgWork, "6", at(4*minute))
	add(store.KindRequested, requested(rq2))
	_, err = f.s.ClearRequests(f.ctx, in(tgWork), alice, at(5*minute))
	must("ClearRequests", err)
	add(store.KindCleared, store.ChangeData{})
	rq3 := f.mustCreate(tgWork, "7", at(5*minute))
	add(store.KindRequested, requested(rq3))
	_, err = f.s.ExpireRequests(f.ctx, at(5*minute+ttl))
	must("ExpireRequests", err)
	add(store.KindExpired, store.ChangeData{})

	lp := store.LockoutPolicy{MaxFailures: 2, Window: hour, LockFor: 10 * minute}
	for i := range 2 {
		_, err := f.s.RecordApprovalFailure(f.ctx, sig, ops, at(2*hour+time.Duration(i)*minute), lp)
		must("RecordApprovalFailure", err)
		add(store.KindApproveFailed, store.ChangeData{Version: v, Failures: i + 1, MaxFailures: 2})
	}
	until := at(2*hour + minute + lp.LockFor).UnixMilli()
	add(store.KindLockedOut, store.ChangeData{Version: v, Failures: 2, Until: until})
	_, err = f.s.Unlock(f.ctx, sig, alice, at(2*hour+2*minute))
	must("Unlock", err)
	add(store.KindUnlocked, store.ChangeData{Version: v, Failures: 2, Until: until})

	must("CreateToken", f.s.CreateToken(f.ctx, token("tok_gw", store.ScopeGateway, at(3*hour)), alice))
	add(store.KindTokenCreated, store.ChangeData{Version: v, TokenScope: store.ScopeGateway})
	must("CreateToken", f.s.CreateToken(f.ctx, token("tok_admin", store.ScopeAdmin, at(3*hour)), alice))
	add(store.KindTokenCreated, store.ChangeData{Version: v, TokenScope: store.ScopeAdmin})
	_, err = f.s.RevokeToken(f.ctx, "tok_gw", alice, at(3*hour))
	must("RevokeToken", err)
	add(store.KindTokenRevoked, store.ChangeData{Version: v, TokenScope: store.ScopeGateway})

	must("RotateSigningKey", f.s.RotateSigningKey(f.ctx, key(255, at(4*hour)), at(3*hour), alice))
	add(store.KindKeyRotated, store.ChangeData{Version: v, KID: 255})
	labelled := setupToken("labelled", at(4*hour))
	labelled.KID, labelled.Role, labelled.Label = 255, "operator", "Ana's \"phone\" ✓\n\\"
	must("CreateSetupToken", f.s.CreateSetupToken(f.ctx, labelled, at(3*hour), alice))
	add(store.KindSetupIssued, store.ChangeData{Version: v, Role: "operator", Label: labelled.Label, KID: 255})
	plain := setupToken("plain", at(4*hour))
	plain.KID, plain.Label = 255, ""
	must("CreateSetupToken", f.s.CreateSetupToken(f.ctx, plain, at(3*hour), alice))
	add(store.KindSetupIssued, store.ChangeData{Version: v, Role: "node", KID: 255})

	d := deviceRequest("payload", at(4*hour))
	d.Name, d.Platform, d.Role, d.Label = "Pixel 9 \"Pro\" ✓", "android\t14", "operator", labelled.Label
	must("CreateDeviceRequest", f.s.CreateDeviceRequest(f.ctx, d, labelled.ID, gate))
	add(store.KindDeviceRequested, store.ChangeData{Version: v, Name: d.Name, Platform: d.Platform, Role: "operator", Label: labelled.Label,
		Remote: d.Remote, CheckCode: d.CheckCode, Expires: d.ExpiresAt.UnixMilli()})
	_, err = f.s.DecideDeviceRequest(f.ctx, d.ID, true, alice, at(4*hour))
	must("DecideDeviceRequest", err)
	add(store.KindDeviceApproved, store.ChangeData{})
	_, err = f.s.DeliverDeviceToken(f.ctx, d.ID, tokenHashOf("1"), at(4*hour))
	must("DeliverDeviceToken", err)
	add(store.KindDevicePaired, store.ChangeData{})
	_, err = f.s.RotateDeviceToken(f.ctx, d.DeviceID, tokenHashOf("2"), alice, at(4*hour))
	must("RotateDeviceToken", err)
	add(store.KindDeviceRotated, store.ChangeData{})
	_, err = f.s.RevokeDevice(f.ctx, d.DeviceID, alice, at(4*hour))
	must("RevokeDevice", err)
	add(store.KindDeviceRevoked, store.ChangeData{})
	must("RemoveDevice", f.s.RemoveDevice(f.ctx, d.DeviceID, alice, at(4*hour)))
	add(store.KindDeviceRemoved, store.ChangeData{})
	d2 := deviceRequest("rejected", at(4*hour))
	must("CreateDeviceRequest", f.s.CreateDeviceRequest(f.ctx, d2, plain.ID, gate))
	add(store.KindDeviceRequested, store.ChangeData{Version: v, Name: d2.Name, Platform: d2.Platform, Role: "node", Label: d2.Label,
		Remote: d2.Remote, CheckCode: d2.CheckCode, Expires: d2.ExpiresAt.UnixMilli()})
	_, err = f.s.DecideDeviceRequest(f.ctx, d2.ID, false, alice, at(4*hour))
	must("DecideDeviceRequest", err)
	add(store.KindDeviceRejected, store.ChangeData{})

	// Every kind is here, so a new one with a payload cannot slip by
	// (store's own test checks that ChangeKinds lists every declared kind).
	seen := map[store.ChangeKind]bool{}
	for _, w := range want {
		seen[w.Kind] = true
	}
	for _, k := range store.ChangeKinds() {
		if !seen[k] {
			t.Errorf("no %s change made: the case must cover every kind", k)
		}
	}

	project := func(cs []store.Change) []kd {
		out := make([]kd, len(cs))
		for i, c := range cs {
			out[i] = kd{c.Kind, c.Data}
		}
		return out
	}
	full := f.since(0)
	if diff := cmp.Diff(want, project(full)); diff != "" {
		t.Errorf("payloads read back through Changes (-want +got):\n%s", diff)
	}
	recent, err := f.s.RecentChanges(f.ctx, store.ChangeQuery{Limit: len(full)})
	must("RecentChanges", err)
	for i, j := 0, len(recent)-1; i < j; i, j = i+1, j-1 {
		recent[i], recent[j] = recent[j], recent[i]
	}
	if diff := cmp.Diff(full, recent, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("RecentChanges reads other changes than Changes (-Changes +RecentChanges):\n%s", diff)
	}
	// Another store on the database reads the same.
	other, err := f.open().Changes(f.ctx, 0, len(full)+1)
	must("Changes through another store", err)
	if diff := cmp.Diff(full, other); diff != "" {
		t.Errorf("another store reads other changes (-first +other):\n%s", diff)
	}
}
