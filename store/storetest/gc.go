package storetest

import (
	"errors"
	"flag"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// long runs the flood cases at the issue's size. Without it they run at
// a size that proves the same rules in about a second (a tenth of that
// under the race detector): on this suite's machines every MarkNotice of a
// new sender is one durable commit (half a millisecond or more), so 100,000
// senders take a minute per engine.
var long = flag.Bool("storetest.long", false, "run the flood cases at full size (100,000 senders)")

// gcPass calls GarbageCollect until a call deletes nothing and adds up
// what the calls deleted: one pass of a collector that may bound the work
// of each call. It reports the number of calls that deleted something.
func (f *fixture) gcPass(now time.Time, p store.GCPolicy) (store.GCResult, int) {
	f.t.Helper()
	var sum store.GCResult
	for calls := 0; ; calls++ {
		r, err := f.s.GarbageCollect(f.ctx, now, p)
		if err != nil {
			f.t.Fatalf("GarbageCollect(%v, %+v): %v", now, p, err)
		}
		if r == (store.GCResult{}) {
			return sum, calls
		}
		if calls > 1000 {
			f.t.Fatalf("GarbageCollect still deleting after %d calls: %+v", calls, r)
		}
		sum.Requests += r.Requests
		sum.Approvals += r.Approvals
		sum.Lockouts += r.Lockouts
		sum.Notices += r.Notices
		sum.Failures += r.Failures
		sum.Declines += r.Declines
		sum.SetupTokens += r.SetupTokens
		sum.DeviceRequests += r.DeviceRequests
		sum.WebSessions += r.WebSessions
		sum.Changes += r.Changes
	}
}

// gc runs one GarbageCollect call and compares its result with want.
func (f *fixture) gc(now time.Time, p store.GCPolicy, want store.GCResult) {
	f.t.Helper()
	r, err := f.s.GarbageCollect(f.ctx, now, p)
	if err != nil {
		f.t.Fatalf("GarbageCollect(%v, %+v): %v", now, p, err)
	}
	if diff := cmp.Diff(want, r); diff != "" {
		f.t.Errorf("GarbageCollect(%s, %+v) (-want +got):\n%s", now.Format(time.TimeOnly), p, diff)
	}
}

// The issue's flood: invented senders against a full scope, each told
// once that the scope is full, leave the notices table no larger than the
// senders of the current rate window after a GC pass. Senders are told
// over ten rate windows from four stores (gateways); then GC deletes
// exactly the notices of the first nine windows, and the rule holds on:
// a sender told long ago may be told again, one told within the window
// may not.
func testGCNotices(t *testing.T, b Backend) {
	n := 2000
	switch {
	case *long:
		n = 100_000
	case raceEnabled:
		n = 200
	}
	f := newFixture(t, b)
	stores := []store.Store{f.s, f.open(), f.open(), f.open()}
	const spread = 10 * window
	step := spread / time.Duration(n)
	toldAt := func(i int) time.Time { return at(time.Duration(i) * step) }
	sender := func(i int) string { return fmt.Sprintf("flood-%06d", i) }
	const kind = "max_pending"

	begin := time.Now()
	var wg sync.WaitGroup
	for g, s := range stores {
		wg.Go(func() {
			for i := g; i < n; i += len(stores) {
				now := toldAt(i)
				ok, err := s.MarkNotice(f.ctx, tg, sender(i), kind, now.Add(-window), now)
				if err != nil || !ok {
					t.Errorf("MarkNotice of new sender %s = %v, %v; want true", sender(i), ok, err)
					return
				}
			}
		})
	}
	wg.Wait()
	flood := time.Since(begin)
	if t.Failed() {
		return
	}

	now := at(spread)
	cutoff := now.Add(-window)
	old, young := 0, 0
	for i := range n {
		if toldAt(i).After(cutoff) {
			young++
		} else {
			old++
		}
	}
	begin = time.Now()
	sum, calls := f.gcPass(now, store.GCPolicy{RateWindow: window})
	if want := (store.GCResult{Notices: old}); sum != want {
		t.Errorf("a GC pass after %d senders over ten windows = %+v, want %+v: the %d told within the window are left", n, sum, want, young)
	}
	t.Logf("%d senders told from %d stores in %v; a GC pass of %d calls deleted %d notices in %v, %d left (the last window's)",
		n, len(stores), flood.Round(time.Millisecond), calls, sum.Notices, time.Since(begin).Round(time.Millisecond), n-sum.Notices)

	lastOld := int(9 * window / step)
	for _, c := range []struct {
		i    int
		want bool
	}{
		{0, true},            // told at the start
		{lastOld, true},      // told exactly one window ago
		{lastOld + 1, false}, // told just within the window
		{n - 1, false},       // told a moment ago
	} {
		ok, err := f.s.MarkNotice(f.ctx, tg, sender(c.i), kind, cutoff, now)
		if err != nil || ok != c.want {
			t.Errorf("after GC: MarkNotice of %s, told at %s, at %s = %v, %v; want %v", sender(c.i), toldAt(c.i).Format(time.TimeOnly), now.Format(time.TimeOnly), ok, err, c.want)
		}
	}
	// What is left is the last window's (and the two told again now).
	f.gc(now.Add(window), store.GCPolicy{RateWindow: window}, store.GCResult{Notices: young + 2})
}

// GarbageCollect deletes each kind of row once its rules no longer need
// it, counts it in GCResult, and leaves the rules working.
func testGCRows(t *testing.T, b Backend) {
	// Requests that expired are deleted and recorded as pairing.expired,
	// as ExpireRequests does; live ones stay.
	t.Run("Requests", func(t *testing.T) {
		f := newFixture(t, b)
		r1 := f.mustCreate(tg, "1", at(0))
		r2 := f.mustCreate(tgWork, "2", at(0))
		r3 := f.mustCreate(sig, "3", at(30*minute))
		seq := f.lastSeq()
		f.gc(at(ttl-ms), store.GCPolicy{}, store.GCResult{})
		f.gc(at(ttl), store.GCPolicy{}, store.GCResult{Requests: 2})
		f.checkChangesAnyOrder("GarbageCollect", seq,
			reqRec(store.KindExpired, r1, store.Actor{}, at(ttl)), reqRec(store.KindExpired, r2, store.Actor{}, at(ttl)))
		f.checkList(all(), at(ttl), r3)
		if n, err := f.s.ExpireRequests(f.ctx, at(ttl)); err != nil || n != 0 {
			t.Errorf("ExpireRequests after GarbageCollect = %d, %v; want 0", n, err)
		}
		f.gc(at(30*minute+ttl), store.GCPolicy{}, store.GCResult{Requests: 1})
	})

	// An approval is remembered until its code would have expired, so
	// approving it again is answered; then it goes.
	t.Run("Approvals", func(t *testing.T) {
		f := newFixture(t, b)
		r1 := f.mustCreate(tg, "1", at(0))
		r2 := f.mustCreate(tg, "2", at(30*minute))
		f.approve(by(store.ViaCode, r1, alice, at(minute)))
		f.approve(by(store.ViaCode, r2, alice, at(31*minute)))
		f.gc(at(ttl-ms), store.GCPolicy{}, store.GCResult{})
		f.gc(at(ttl), store.GCPolicy{}, store.GCResult{Approvals: 1})
		if _, err := f.s.Approve(f.ctx, by(store.ViaCode, r2, alice, at(ttl))); !errors.Is(err, store.ErrAlreadyApproved) {
			t.Errorf("Approve of an approval GC kept: %v, want ErrAlreadyApproved", err)
		}
		f.gc(at(30*minute+ttl), store.GCPolicy{}, store.GCResult{Approvals: 1})
	})

	// A lockout goes once it ended; the scope locks again as before.
	t.Run("Lockouts", func(t *testing.T) {
		f := newFixture(t, b)
		p := store.LockoutPolicy{MaxFailures: 2, Window: hour, LockFor: 10 * minute}
		for i := range 2 {
			if _, err := f.s.RecordApprovalFailure(f.ctx, tg, ops, at(time.Duration(i)*minute), p); err != nil {
				t.Fatal(err)
			}
		}
		end := at(minute + p.LockFor)
		f.gc(end.Add(-ms), store.GCPolicy{}, store.GCResult{})
		if u, err := f.s.LockedUntil(f.ctx, tg, end.Add(-ms)); err != nil || !u.Equal(end) {
			t.Errorf("LockedUntil after a GC during the lock = %v, %v; want %v", u, err, end)
		}
		f.gc(end, store.GCPolicy{}, store.GCResult{Lockouts: 1})
		for i, want := range []time.Time{{}, end.Add(2*minute + p.LockFor)} {
			now := end.Add(time.Duration(i+1) * minute)
			if u, err := f.s.RecordApprovalFailure(f.ctx, tg, ops, now, p); err != nil || !u.Equal(want) {
				t.Errorf("failure %d after the lock and GC: locked until %v, %v; want %v", i+1, u, err, want)
			}
		}
	})

	// Failures older than the window no longer count, so GC with the
	// lockout window changes no count: the lock comes exactly at
	// MaxFailures, as it would have without GC.
	t.Run("Failures", func(t *testing.T) {
		f := newFixture(t, b)
		p := store.LockoutPolicy{MaxFailures: 4, Window: 30 * minute, LockFor: 10 * minute}
		fail := func(now time.Time, wantCount int, wantLocked bool) {
			t.Helper()
			seq := f.lastSeq()
			u, err := f.s.RecordApprovalFailure(f.ctx, tg, ops, now, p)
			if err != nil {
				t.Fatalf("RecordApprovalFailure at %v: %v", now, err)
			}
			if locked := !u.IsZero(); locked != wantLocked {
				t.Errorf("failure at %s: locked until %v, want locked %v", now.Format(time.TimeOnly), u, wantLocked)
			}
			if cs := f.since(seq); len(cs) == 0 || cs[0].Data.Failures != wantCount {
				t.Errorf("failure at %s: changes %+v, want the count %d", now.Format(time.TimeOnly), cs, wantCount)
			}
		}
		fail(at(0), 1, false)
		fail(at(5*minute), 2, false)
		fail(at(30*minute), 2, false) // the one at 0 is out of the window
		fail(at(50*minute), 2, false) // 30m and 50m
		// At 1h, failures at or before 0h30m no longer count.
		f.gc(at(hour), store.GCPolicy{FailureWindow: p.Window}, store.GCResult{Failures: 3})
		fail(at(hour), 2, false)
		fail(at(hour+minute), 3, false)
		fail(at(hour+2*minute), 4, true)
		f.gc(at(hour+2*minute), store.GCPolicy{FailureWindow: p.Window}, store.GCResult{})
	})

	// A decline older than the window no longer refuses a code: it goes.
	// One declined exactly a window ago still refuses, and stays.
	t.Run("Declines", func(t *testing.T) {
		f := newFixture(t, b)
		const w = 30 * minute
		for _, d := range []struct {
			sender string
			at     time.Duration
		}{{"1", 0}, {"2", 20 * minute}, {"3", 30 * minute}} {
			r := f.mustCreate(tg, d.sender, at(0))
			if _, err := f.s.Reject(f.ctx, by(store.ViaRequest, r, alice, at(d.at))); err != nil {
				t.Fatal(err)
			}
		}
		now := at(50 * minute)
		f.gc(now, store.GCPolicy{DeclineWindow: w}, store.GCResult{Declines: 1})
		for _, c := range []struct {
			sender string
			since  time.Time
			want   bool
		}{
			{"1", at(-hour), false}, // gone: the sender may get a code again
			{"2", now.Add(-w), true},
			{"3", now.Add(-w), true},
		} {
			if got, err := f.s.DeclinedSince(f.ctx, tg, c.sender, c.since); err != nil || got != c.want {
				t.Errorf("DeclinedSince(%s, %s) after GC = %v, %v; want %v", c.sender, c.since.Format(time.TimeOnly), got, err, c.want)
			}
		}
		f.mustCreate(tg, "1", now)
	})

	// A setup token is kept SetupTokens after it expired (a late device
	// still learns it expired), then it goes.
	t.Run("SetupTokens", func(t *testing.T) {
		f := newFixture(t, b)
		expired := f.issue("a", at(0))          // expires 0h10m
		atCutoff := f.issue("b", at(20*minute)) // expires 0h30m
		lately := f.issue("c", at(50*minute))   // expires 1h
		now := at(hour)
		f.gc(now, store.GCPolicy{SetupTokens: 30 * minute}, store.GCResult{SetupTokens: 2})
		for _, tok := range []store.SetupToken{expired, atCutoff} {
			if _, err := f.s.GetSetupToken(f.ctx, tok.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetSetupToken of a token expired %v before GC: %v, want ErrNotFound", now.Sub(tok.ExpiresAt), err)
			}
		}
		if got, err := f.s.GetSetupToken(f.ctx, lately.ID); err != nil || got.ID != lately.ID {
			t.Errorf("GetSetupToken of a token expired just now: %v, %v; want it kept", got.ID, err)
		}
	})

	// A device request is kept DeviceRequests after it was decided or, if
	// never decided, after it expired; its device stays.
	t.Run("DeviceRequests", func(t *testing.T) {
		f := newFixture(t, b)
		type dr struct {
			name    string
			created time.Duration
			decide  string // approve, reject, deliver or "" (pending)
			at      time.Duration
			gone    bool
		}
		rs := []dr{
			{"approved", 0, "approve", minute, true},
			{"rejected", 0, "reject", 5 * minute, true},
			{"expired", 0, "", 0, true},                     // expired 0h10m
			{"expired-at-cutoff", 20 * minute, "", 0, true}, // expired 0h30m
			{"paired", 40 * minute, "deliver", 41 * minute, false},
			{"expired-lately", 50 * minute, "", 0, false}, // expired 1h
			{"decided-lately", 45 * minute, "reject", 46 * minute, false},
		}
		reqs := map[string]store.DeviceRequest{}
		for _, r := range rs {
			tok := f.issue(r.name, at(r.created))
			d := deviceRequest(r.name, at(r.created))
			if err := f.s.CreateDeviceRequest(f.ctx, d, tok.ID, gate); err != nil {
				t.Fatal(err)
			}
			reqs[r.name] = d
			if r.decide == "" {
				continue
			}
			if _, err := f.s.DecideDeviceRequest(f.ctx, d.ID, r.decide != "reject", alice, at(r.at)); err != nil {
				t.Fatal(err)
			}
			if r.decide == "deliver" {
				if _, err := f.s.DeliverDeviceToken(f.ctx, d.ID, tokenHashOf(r.name), at(r.at)); err != nil {
					t.Fatal(err)
				}
			}
		}
		f.gc(at(hour), store.GCPolicy{DeviceRequests: 30 * minute}, store.GCResult{DeviceRequests: 4})
		for _, r := range rs {
			_, err := f.s.GetDeviceRequest(f.ctx, reqs[r.name].ID)
			if r.gone && !errors.Is(err, store.ErrNotFound) {
				t.Errorf("GetDeviceRequest(%s) after GC: %v, want ErrNotFound", r.name, err)
			}
			if !r.gone && err != nil {
				t.Errorf("GetDeviceRequest(%s) after GC: %v, want it kept", r.name, err)
			}
		}
		if _, err := f.s.GetDevice(f.ctx, reqs["paired"].DeviceID); err != nil {
			t.Errorf("GetDevice of a paired device after GC: %v", err)
		}
		// Once its request goes, the paired device stays.
		f.gc(at(2*hour), store.GCPolicy{DeviceRequests: 30 * minute}, store.GCResult{DeviceRequests: 3})
		if _, err := f.s.GetDevice(f.ctx, reqs["paired"].DeviceID); err != nil {
			t.Errorf("GetDevice after its request was collected: %v", err)
		}
	})
}

// A zero duration keeps that kind of row forever; each duration deletes
// only its own kind.
func testGCZero(t *testing.T, b Backend) {
	f := newFixture(t, b)
	if ok, err := f.s.MarkNotice(f.ctx, tg, "1", "max_pending", at(-window), at(0)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := f.s.RecordApprovalFailure(f.ctx, tg, ops, at(0), store.LockoutPolicy{MaxFailures: 10, Window: hour, LockFor: hour}); err != nil {
		t.Fatal(err)
	}
	r := f.mustCreate(tg, "2", at(0))
	if _, err := f.s.Reject(f.ctx, by(store.ViaCode, r, alice, at(0))); err != nil {
		t.Fatal(err)
	}
	tok := f.issue("a", at(0))
	spent := f.issue("b", at(0))
	d := deviceRequest("a", at(0))
	if err := f.s.CreateDeviceRequest(f.ctx, d, spent.ID, gate); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DecideDeviceRequest(f.ctx, d.ID, false, alice, at(0)); err != nil {
		t.Fatal(err)
	}
	changes := int(f.lastSeq())

	now := at(1000 * hour)
	f.gc(now, store.GCPolicy{}, store.GCResult{})
	if ok, err := f.s.DeclinedSince(f.ctx, tg, "2", at(-hour)); err != nil || !ok {
		t.Errorf("DeclinedSince after a GC with zero durations = %v, %v; want the decline kept", ok, err)
	}
	if _, err := f.s.GetSetupToken(f.ctx, tok.ID); err != nil {
		t.Errorf("GetSetupToken after a GC with zero durations: %v", err)
	}
	if _, err := f.s.GetDeviceRequest(f.ctx, d.ID); err != nil {
		t.Errorf("GetDeviceRequest after a GC with zero durations: %v", err)
	}
	if cs, err := f.s.Changes(f.ctx, 0, 100); err != nil || len(cs) != changes {
		t.Errorf("Changes after a GC with zero durations = %d, %v; want all %d", len(cs), err, changes)
	}
	for _, c := range []struct {
		p    store.GCPolicy
		want store.GCResult
	}{
		{store.GCPolicy{RateWindow: hour}, store.GCResult{Notices: 1}},
		{store.GCPolicy{FailureWindow: hour}, store.GCResult{Failures: 1}},
		{store.GCPolicy{DeclineWindow: hour}, store.GCResult{Declines: 1}},
		{store.GCPolicy{SetupTokens: hour}, store.GCResult{SetupTokens: 2}},
		{store.GCPolicy{DeviceRequests: hour}, store.GCResult{DeviceRequests: 1}},
		{store.GCPolicy{Retention: hour}, store.GCResult{Changes: changes}},
	} {
		if c.p.Retention > 0 {
			f.allow(tg, "recent", alice, now) // not old: the log keeps it
		}
		f.gc(now, c.p, c.want)
	}
}
