package storetest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

// by returns ApproveParams that find r by code hash (via code) or by id.
func by(via store.Via, r store.Request, actor store.Actor, now time.Time) store.ApproveParams {
	p := store.ApproveParams{Scope: r.Scope, Actor: actor, Now: now}
	if via == store.ViaCode {
		p.CodeHash = r.CodeHash
	} else {
		p.RequestID = r.ID
	}
	return p
}

func testApprove(t *testing.T, b Backend) {
	for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
		t.Run("By"+strings.ToUpper(string(via[:1]))+string(via[1:]), func(t *testing.T) {
			f := newFixture(t, b)
			r := f.mustCreate(tg, "1", at(0))
			keep := f.mustCreate(tg, "2", at(time.Second))
			p := by(via, r, alice, at(5*minute))
			p.Notify = true

			seq := f.lastSeq()
			gotR, gotE := f.approve(p)
			if diff := cmp.Diff(r, gotR); diff != "" {
				t.Errorf("Approve returned request (-want +got):\n%s", diff)
			}
			want := store.AllowEntry{Scope: tg, Sender: "1", Name: r.Name, ApprovedAt: p.Now, ApprovedBy: alice.Name, Via: via}
			if diff := cmp.Diff(want, gotE); diff != "" {
				t.Errorf("Approve returned entry (-want +got):\n%s", diff)
			}
			f.checkList(all(), at(6*minute), keep)
			f.checkAllowed(all(), true, want)
			f.checkChanges("Approve", seq, reqRec(store.KindApproved, r, alice, p.Now))
			if cs := f.since(seq); len(cs) == 1 {
				want := store.ChangeData{Version: store.ChangeDataVersion, Via: via, Notify: true}
				if diff := cmp.Diff(want, cs[0].Data); diff != "" {
					t.Errorf("Approve with Notify recorded data (-want +got):\n%s", diff)
				}
			}

			// Approved once: the request is no longer pending, and a
			// second approval says so without changing anything.
			p.Now = at(6 * minute)
			seq = f.lastSeq()
			again, err := f.s.Approve(f.ctx, p)
			wantErr(t, "second Approve of one request", err, store.ErrAlreadyApproved)
			if diff := cmp.Diff(r, again.Request); diff != "" {
				t.Errorf("second Approve returned request (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, again.Entry); diff != "" {
				t.Errorf("second Approve returned entry (-want +got):\n%s", diff)
			}
			f.checkChanges("second Approve", seq)
			f.checkList(all(), at(6*minute), keep)
		})
	}

	t.Run("UnknownOrExpired", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		seq := f.lastSeq()
		for _, c := range []struct {
			what string
			p    store.ApproveParams
		}{
			{"unknown code", store.ApproveParams{Scope: tg, CodeHash: hash("unknown"), Actor: alice, Now: at(minute)}},
			{"unknown request id", store.ApproveParams{Scope: tg, RequestID: "req_unknown", Actor: alice, Now: at(minute)}},
		} {
			_, err := f.s.Approve(f.ctx, c.p)
			wantErr(t, "Approve of an "+c.what, err, store.ErrNotFound)
		}
		f.checkChanges("Approve of unknown requests", seq)
		for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
			_, err := f.s.Approve(f.ctx, by(via, r, alice, r.ExpiresAt.Add(minute)))
			wantErr(t, "Approve of an expired request via "+string(via), err, store.ErrNotFound)
		}
		f.checkAllowed(all(), true)
	})

	// Account isolation (OpenClaw #26639): a code or id from one scope
	// never approves anything in another.
	t.Run("WrongScope", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		seq := f.lastSeq()
		for _, scope := range []store.Scope{tgWork, sig} {
			for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
				p := by(via, r, alice, at(minute))
				p.Scope = scope
				_, err := f.s.Approve(f.ctx, p)
				wantErr(t, fmt.Sprintf("Approve of a %s request in %s via %s", tg, scope, via), err, store.ErrNotFound)
			}
		}
		f.checkChanges("Approve in the wrong scope", seq)
		f.checkAllowed(all(), true)
		f.checkList(all(), at(minute), r)
		_, e := f.approve(by(store.ViaCode, r, alice, at(2*minute)))
		if e.Scope != tg {
			t.Errorf("Approve in the right scope made an entry in %s, want %s", e.Scope, tg)
		}
	})
}

func testApproveRace(t *testing.T, b Backend) {
	f := newFixture(t, b)
	const rounds, racers = 20, 8
	for round := range rounds {
		r := f.mustCreate(tg, fmt.Sprint(1000+round), at(time.Duration(round)*ms))
		seq := f.lastSeq()
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			wins    []int
			already int
			errs    []error
		)
		start := make(chan struct{})
		for i := range racers {
			via := store.ViaCode
			if i%2 == 1 {
				via = store.ViaRequest
			}
			p := by(via, r, store.Actor{Name: fmt.Sprintf("cli:racer%d", i), Source: "cli"}, at(minute))
			wg.Go(func() {
				<-start
				got, err := f.s.Approve(f.ctx, p)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					wins = append(wins, i)
				case errors.Is(err, store.ErrAlreadyApproved) && got.Request.ID == r.ID && got.Entry.Sender == r.Sender && got.Entry.Active():
					already++
				default:
					errs = append(errs, fmt.Errorf("%v (request %q, entry of %q)", err, got.Request.ID, got.Entry.Sender))
				}
			})
		}
		close(start)
		wg.Wait()
		// The losers are told the request was approved, with its entry:
		// a race is no wrong code.
		if len(wins) != 1 || already != racers-1 || len(errs) != 0 {
			var first error
			if len(errs) > 0 {
				first = errs[0]
			}
			t.Errorf("round %d: %d concurrent approvals: %d succeeded, %d ErrAlreadyApproved, %d other results (the first: %v); want 1, %d, none",
				round, racers, len(wins), already, len(errs), first, racers-1)
		}
		var approved int
		for _, c := range f.since(seq) {
			if c.Kind == store.KindApproved && c.RequestID == r.ID {
				approved++
			}
		}
		if approved != 1 {
			t.Errorf("round %d: %d KindApproved records for %s, want 1", round, approved, r.ID)
		}
	}
	if got := f.allowed(all(), true); len(got) != rounds {
		t.Errorf("ListAllowed after %d raced approvals: %d entries, want %d", rounds, len(got), rounds)
	}
	f.checkList(all(), at(minute))
}

func testAllowRevoke(t *testing.T, b Backend) {
	t.Run("AllowSeveral", func(t *testing.T) {
		f := newFixture(t, b)
		active, _ := f.allow(tg, "2", alice, at(0))
		r := f.mustCreate(tg, "3", at(0))
		seq := f.lastSeq()
		res, err := f.s.Allow(f.ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: "1", Name: "One"}, {Sender: "2"}, {Sender: "3"}},
			Via: store.ViaManual, Actor: ops, Now: at(minute)})
		if err != nil {
			t.Fatalf("Allow of three senders: %v", err)
		}
		entry := func(sender, name string) store.AllowEntry {
			return store.AllowEntry{Scope: tg, Sender: sender, Name: name, ApprovedAt: at(minute), ApprovedBy: ops.Name, Via: store.ViaManual}
		}
		want := []store.AllowResult{{Entry: entry("1", "One"), Changed: true}, {Entry: active}, {Entry: entry("3", ""), Changed: true}}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("Allow of three senders, results in order (-want +got):\n%s", diff)
		}
		// The already active sender records nothing; the pending one's
		// request is cleared.
		f.checkChanges("Allow of three senders", seq,
			senderRec(store.KindAllowed, tg, "1", ops, at(minute)),
			reqRec(store.KindCleared, r, ops, at(minute)),
			senderRec(store.KindAllowed, tg, "3", ops, at(minute)))
		f.checkAllowed(in(tg), false, entry("1", "One"), active, entry("3", ""))
		f.checkList(in(tg), at(minute))
	})
	t.Run("RevokeReactivate", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		_, e1 := f.approve(by(store.ViaCode, r, alice, at(minute)))
		e5, _ := f.allow(tg, "5", alice, at(minute))

		seq := f.lastSeq()
		got, err := f.s.Revoke(f.ctx, tg, "1", ops, at(2*minute))
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		revoked := e1
		revoked.RevokedAt, revoked.RevokedBy = at(2*minute), ops.Name
		if diff := cmp.Diff(revoked, got); diff != "" {
			t.Errorf("Revoke returned (-want +got):\n%s", diff)
		}
		if got.Active() {
			t.Error("revoked entry reports Active")
		}
		f.checkChanges("Revoke", seq, senderRec(store.KindRevoked, tg, "1", ops, at(2*minute)))
		f.checkAllowed(in(tg), false, e5)
		f.checkAllowed(in(tg), true, revoked, e5)

		// Nothing active to revoke: a revoked entry, an unknown sender, a
		// sender of another scope.
		seq = f.lastSeq()
		for _, c := range []struct {
			scope  store.Scope
			sender string
		}{{tg, "1"}, {tg, "404"}, {tgWork, "5"}, {sig, "5"}} {
			_, err := f.s.Revoke(f.ctx, c.scope, c.sender, ops, at(3*minute))
			wantErr(t, fmt.Sprintf("Revoke(%s, %s)", c.scope, c.sender), err, store.ErrNotFound)
		}
		f.checkChanges("Revoke of nothing active", seq)
		f.checkAllowed(in(tg), true, revoked, e5)

		// Approving the sender again reactivates the one entry.
		r2 := f.mustCreate(tg, "1", at(3*minute))
		_, e2 := f.approve(by(store.ViaRequest, r2, alice, at(4*minute)))
		want := store.AllowEntry{Scope: tg, Sender: "1", Name: r2.Name, ApprovedAt: at(4 * minute), ApprovedBy: alice.Name, Via: store.ViaRequest}
		if diff := cmp.Diff(want, e2); diff != "" {
			t.Errorf("Approve of a revoked sender returned (-want +got):\n%s", diff)
		}
		f.checkAllowed(in(tg), true, want, e5)

		// So does Allow, once.
		if _, err := f.s.Revoke(f.ctx, tg, "1", ops, at(5*minute)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		seq = f.lastSeq()
		e3, changed := f.allow(tg, "1", alice, at(6*minute))
		want = store.AllowEntry{Scope: tg, Sender: "1", Name: "Name of 1", ApprovedAt: at(6 * minute), ApprovedBy: alice.Name, Via: store.ViaManual}
		if diff := cmp.Diff(want, e3); diff != "" || !changed {
			t.Errorf("Allow of a revoked sender returned changed=%v, entry (-want +got):\n%s", changed, diff)
		}
		f.checkChanges("Allow of a revoked sender", seq, senderRec(store.KindAllowed, tg, "1", alice, at(6*minute)))

		seq = f.lastSeq()
		e4, changed := f.allow(tg, "1", ops, at(7*minute))
		if diff := cmp.Diff(want, e4); diff != "" || changed {
			t.Errorf("Allow of an active sender returned changed=%v (want false), entry (-existing +got):\n%s", changed, diff)
		}
		f.checkChanges("Allow of an active sender", seq)
		f.checkAllowed(in(tg), false, want, e5)

		res, err := f.s.Allow(f.ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: "7", Name: "Imported"}}, Via: store.ViaImport, Actor: alice, Now: at(8 * minute)})
		want7 := []store.AllowResult{{Entry: store.AllowEntry{Scope: tg, Sender: "7", Name: "Imported", ApprovedAt: at(8 * minute), ApprovedBy: alice.Name, Via: store.ViaImport}, Changed: true}}
		if diff := cmp.Diff(want7, res); err != nil || diff != "" {
			t.Errorf("Allow via import = %v, results (-want +got):\n%s", err, diff)
		}
	})

	// What an import asks of Allow: KeepRevoked leaves a revoked sender
	// revoked, and a sender its source had revoked comes over revoked
	// (never admitted), unless pairgate has an entry for them already.
	t.Run("Import", func(t *testing.T) {
		f := newFixture(t, b)
		f.allow(tg, "1", alice, at(0))
		if _, err := f.s.Revoke(f.ctx, tg, "1", ops, at(minute)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		active, _ := f.allow(tg, "2", alice, at(minute))
		seq := f.lastSeq()
		res, err := f.s.Allow(f.ctx, store.AllowParams{Scope: tg, Via: store.ViaImport, Actor: ops, Now: at(2 * minute), KeepRevoked: true,
			Senders: []store.AllowSender{{Sender: "1"}, {Sender: "2", Revoked: true}, {Sender: "3", Name: "Three", Revoked: true}, {Sender: "4"}}})
		if err != nil {
			t.Fatalf("Allow with KeepRevoked: %v", err)
		}
		revoked1 := store.AllowEntry{Scope: tg, Sender: "1", Name: "Name of 1", ApprovedAt: at(0), ApprovedBy: alice.Name, Via: store.ViaManual,
			RevokedAt: at(minute), RevokedBy: ops.Name}
		new3 := store.AllowEntry{Scope: tg, Sender: "3", Name: "Three", ApprovedAt: at(2 * minute), ApprovedBy: ops.Name, Via: store.ViaImport,
			RevokedAt: at(2 * minute), RevokedBy: ops.Name}
		new4 := store.AllowEntry{Scope: tg, Sender: "4", ApprovedAt: at(2 * minute), ApprovedBy: ops.Name, Via: store.ViaImport}
		want := []store.AllowResult{{Entry: revoked1}, {Entry: active}, {Entry: new3, Changed: true}, {Entry: new4, Changed: true}}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("Allow with KeepRevoked and Revoked senders (-want +got):\n%s", diff)
		}
		f.checkChanges("an import", seq, senderRec(store.KindRevoked, tg, "3", ops, at(2*minute)), senderRec(store.KindAllowed, tg, "4", ops, at(2*minute)))
		f.checkAllowed(in(tg), false, active, new4)
		f.checkAllowed(in(tg), true, revoked1, active, new3, new4)
		var scanned []string
		if _, err := f.s.ScanAllowed(f.ctx, func(_ store.Scope, sender string) error { scanned = append(scanned, sender); return nil }); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"2", "4"}, scanned); diff != "" {
			t.Errorf("ScanAllowed after the import (-want +got):\n%s", diff)
		}
	})

	t.Run("ScanSnapshot", func(t *testing.T) { testScanSnapshot(t, b) })

	t.Run("ListAndScan", func(t *testing.T) {
		f := newFixture(t, b)
		seq, err := f.s.ScanAllowed(f.ctx, func(scope store.Scope, sender string) error {
			t.Errorf("ScanAllowed on an empty store called fn(%s, %s)", scope, sender)
			return nil
		})
		if err != nil || seq != 0 {
			t.Errorf("ScanAllowed on an empty store = %d, %v; want 0, nil", seq, err)
		}

		// Allowed out of order; listed by scope (channel, account), then sender.
		type key struct {
			scope  store.Scope
			sender string
		}
		keys := []key{{tgWork, "300"}, {sig, "+4915112345678"}, {tg, "200"}, {tg, "1000"}, {tg, "500"}, {sig, "uuid:0f0e"}}
		entries := map[key]store.AllowEntry{}
		for i, k := range keys {
			e, changed := f.allow(k.scope, k.sender, alice, at(time.Duration(i)*minute))
			if !changed {
				t.Errorf("first Allow(%s, %s) changed = false", k.scope, k.sender)
			}
			entries[k] = e
		}
		rev, err := f.s.Revoke(f.ctx, tg, "500", ops, at(hour))
		if err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		entries[key{tg, "500"}] = rev
		want := func(includeRevoked bool, match func(store.Scope) bool) []store.AllowEntry {
			var out []store.AllowEntry
			for _, e := range entries {
				if match(e.Scope) && (includeRevoked || e.Active()) {
					out = append(out, e)
				}
			}
			sort.Slice(out, func(i, j int) bool {
				a, b := out[i], out[j]
				if a.Scope.Channel != b.Scope.Channel {
					return a.Scope.Channel < b.Scope.Channel
				}
				if a.Scope.Account != b.Scope.Account {
					return a.Scope.Account < b.Scope.Account
				}
				return a.Sender < b.Sender
			})
			return out
		}
		for _, c := range []struct {
			filter store.RequestFilter
			match  func(store.Scope) bool
		}{
			{all(), func(store.Scope) bool { return true }},
			{store.RequestFilter{Channel: "telegram"}, func(s store.Scope) bool { return s.Channel == "telegram" }},
			{store.RequestFilter{Account: "default"}, func(s store.Scope) bool { return s.Account == "default" }},
			{in(tg), func(s store.Scope) bool { return s == tg }},
			{in(tgWork), func(s store.Scope) bool { return s == tgWork }},
			{store.RequestFilter{Channel: "whatsapp"}, func(store.Scope) bool { return false }},
		} {
			for _, includeRevoked := range []bool{false, true} {
				f.checkAllowed(c.filter, includeRevoked, want(includeRevoked, c.match)...)
			}
		}

		var got []key
		seq, err = f.s.ScanAllowed(f.ctx, func(scope store.Scope, sender string) error {
			got = append(got, key{scope, sender})
			return nil
		})
		if err != nil {
			t.Fatalf("ScanAllowed: %v", err)
		}
		var active []key
		for _, e := range want(false, func(store.Scope) bool { return true }) {
			active = append(active, key{e.Scope, e.Sender})
		}
		less := func(a, b key) bool { return fmt.Sprint(a) < fmt.Sprint(b) }
		if diff := cmp.Diff(active, got, cmp.AllowUnexported(key{}), cmpopts.SortSlices(less)); diff != "" {
			t.Errorf("ScanAllowed visited (-want +got):\n%s", diff)
		}
		if last := f.lastSeq(); seq != last {
			t.Errorf("ScanAllowed seq = %d, want the last change's Seq %d", seq, last)
		}

		stop := errors.New("stop here")
		calls := 0
		_, err = f.s.ScanAllowed(f.ctx, func(store.Scope, string) error { calls++; return stop })
		if !errors.Is(err, stop) || calls != 1 {
			t.Errorf("ScanAllowed with fn failing: %d calls, error %v; want 1 call and fn's error", calls, err)
		}
	})
}

// testScanSnapshot checks ScanAllowed's promise to followers: the entries
// it visits are exactly the state after the change it returns, even while
// another store keeps allowing and revoking.
func testScanSnapshot(t *testing.T, b Backend) {
	f := newFixture(t, b)
	writer := f.open()
	const writes, senders = 120, 7
	done := make(chan error, 1)
	go func() {
		active := map[string]bool{}
		for i := range writes {
			sender := fmt.Sprint(i % senders)
			now := at(time.Duration(i) * time.Second)
			var err error
			if active[sender] {
				_, err = writer.Revoke(f.ctx, tg, sender, ops, now)
			} else {
				_, err = writer.Allow(f.ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: sender}}, Via: store.ViaManual, Actor: ops, Now: now})
			}
			if err != nil {
				done <- fmt.Errorf("op %d on sender %s: %w", i, sender, err)
				return
			}
			active[sender] = !active[sender]
		}
		done <- nil
	}()

	type key struct {
		scope  store.Scope
		sender string
	}
	scans := 0
	for finished := false; !finished || scans < 3; scans++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writer: %v", err)
			}
			finished = true
		default:
		}
		got := map[key]bool{}
		seq, err := f.s.ScanAllowed(f.ctx, func(scope store.Scope, sender string) error {
			got[key{scope, sender}] = true
			return nil
		})
		if err != nil {
			t.Fatalf("ScanAllowed: %v", err)
		}
		// Replay the log up to seq.
		want := map[key]bool{}
		for _, c := range f.since(0) {
			if c.Seq > seq {
				break
			}
			switch {
			case c.Kind.AdmitsSender():
				want[key{c.Scope, c.Sender}] = true
			case c.Kind == store.KindRevoked:
				delete(want, key{c.Scope, c.Sender})
			}
		}
		if diff := cmp.Diff(want, got, cmp.AllowUnexported(key{})); diff != "" {
			t.Fatalf("scan %d: ScanAllowed visited a state other than the one after its seq %d (-replayed +visited):\n%s", scans, seq, diff)
		}
	}
	t.Logf("%d consistent scans during %d writes", scans, writes)
}

func testReject(t *testing.T, b Backend) {
	f := newFixture(t, b)
	a := f.mustCreate(tg, "1", at(0))
	c := f.mustCreate(tg, "2", at(time.Second))
	seq := f.lastSeq()
	got, err := f.s.Reject(f.ctx, by(store.ViaCode, a, alice, at(5*minute)))
	if err != nil {
		t.Fatalf("Reject by code: %v", err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("Reject by code returned (-want +got):\n%s", diff)
	}
	got, err = f.s.Reject(f.ctx, by(store.ViaRequest, c, ops, at(6*minute)))
	if err != nil {
		t.Fatalf("Reject by id: %v", err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("Reject by id returned (-want +got):\n%s", diff)
	}
	f.checkChanges("Reject", seq,
		reqRec(store.KindRejected, a, alice, at(5*minute)),
		reqRec(store.KindRejected, c, ops, at(6*minute)))
	f.checkList(all(), at(7*minute))
	f.checkAllowed(all(), true)

	declined := func(scope store.Scope, sender string, since time.Time) bool {
		t.Helper()
		ok, err := f.s.DeclinedSince(f.ctx, scope, sender, since)
		if err != nil {
			t.Fatalf("DeclinedSince(%s, %s, %v): %v", scope, sender, since, err)
		}
		return ok
	}
	for _, c := range []struct {
		scope  store.Scope
		sender string
		since  time.Time
		want   bool
	}{
		{tg, "1", at(-24 * hour), true},
		{tg, "1", at(5 * minute), true}, // at the decline
		{tg, "1", at(5*minute + ms), false},
		{tg, "2", at(6 * minute), true},
		{tg, "3", at(-24 * hour), false},
		{tgWork, "1", at(-24 * hour), false},
		{sig, "1", at(-24 * hour), false},
	} {
		if got := declined(c.scope, c.sender, c.since); got != c.want {
			t.Errorf("DeclinedSince(%s, %s, %s) = %v, want %v", c.scope, c.sender, c.since.Format(time.RFC3339Nano), got, c.want)
		}
	}

	// Nothing live to reject.
	d := f.mustCreate(tg, "3", at(7*minute))
	seq = f.lastSeq()
	for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
		_, err := f.s.Reject(f.ctx, by(via, a, alice, at(8*minute)))
		wantErr(t, "Reject of a rejected request via "+string(via), err, store.ErrNotFound)
		for _, scope := range []store.Scope{tgWork, sig} {
			p := by(via, d, alice, at(8*minute))
			p.Scope = scope
			_, err := f.s.Reject(f.ctx, p)
			wantErr(t, fmt.Sprintf("Reject of a %s request in %s via %s", tg, scope, via), err, store.ErrNotFound)
		}
	}
	_, err = f.s.Reject(f.ctx, store.ApproveParams{Scope: tg, CodeHash: hash("unknown"), Actor: alice, Now: at(8 * minute)})
	wantErr(t, "Reject of an unknown code", err, store.ErrNotFound)
	f.checkList(all(), at(8*minute), d)
	f.checkChanges("Reject of nothing live", seq)
	if declined(tg, "3", at(-24*hour)) || declined(tgWork, "3", at(-24*hour)) {
		t.Error("a failed Reject marked the sender declined")
	}

	// An approved request cannot be rejected: Reject says it was approved,
	// changes nothing and marks no one declined.
	ok := f.mustCreate(tg, "6", at(8*minute))
	f.approve(by(store.ViaCode, ok, alice, at(8*minute)))
	seq = f.lastSeq()
	for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
		got, err := f.s.Reject(f.ctx, by(via, ok, alice, at(9*minute)))
		wantErr(t, "Reject of an approved request via "+string(via), err, store.ErrAlreadyApproved)
		if diff := cmp.Diff(ok, got); diff != "" {
			t.Errorf("Reject of an approved request via %s returned (-want +got):\n%s", via, diff)
		}
	}
	f.checkChanges("Reject of an approved request", seq)
	if declined(tg, "6", at(-24*hour)) {
		t.Error("Reject of an approved request marked the sender declined")
	}
	if got := f.allowed(in(tg), false); len(got) != 1 || got[0].Sender != "6" {
		t.Errorf("Reject of an approved request changed the allowlist: %+v", got)
	}

	// Lockout does not apply to Reject.
	until, err := f.s.RecordApprovalFailure(f.ctx, tg, alice, at(9*minute), store.LockoutPolicy{MaxFailures: 1, Window: hour, LockFor: 5 * minute})
	if err != nil || !until.Equal(at(14*minute)) {
		t.Fatalf("RecordApprovalFailure(MaxFailures 1) = %v, %v; want %v", until, err, at(14*minute))
	}
	if _, err := f.s.Reject(f.ctx, by(store.ViaRequest, d, alice, at(10*minute))); err != nil {
		t.Errorf("Reject while approvals are locked: %v", err)
	}

	// An expired request cannot be rejected.
	x := f.mustCreate(tg, "4", at(10*minute))
	for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
		_, err = f.s.Reject(f.ctx, by(via, x, alice, x.ExpiresAt.Add(minute)))
		wantErr(t, "Reject of an expired request via "+string(via), err, store.ErrNotFound)
	}
	if declined(tg, "4", at(-24*hour)) {
		t.Error("Reject of an expired request marked the sender declined")
	}

	// Approving the sender later clears the decline.
	again := f.mustCreate(tg, "1", at(20*minute))
	f.approve(by(store.ViaCode, again, alice, at(21*minute)))
	if declined(tg, "1", at(-24*hour)) {
		t.Error("DeclinedSince after a later Approve = true, want false (Approve clears a decline)")
	}
	if !declined(tg, "2", at(-24*hour)) || !declined(tg, "3", at(-24*hour)) {
		t.Error("Approve of one sender cleared another sender's decline")
	}
}

func testLockout(t *testing.T, b Backend) {
	fail := func(f *fixture, scope store.Scope, now time.Time, p store.LockoutPolicy) time.Time {
		f.t.Helper()
		until, err := f.s.RecordApprovalFailure(f.ctx, scope, ops, now, p)
		if err != nil {
			f.t.Fatalf("RecordApprovalFailure(%s, %v): %v", scope, now, err)
		}
		return until
	}
	lockedUntil := func(f *fixture, scope store.Scope, now time.Time) time.Time {
		f.t.Helper()
		until, err := f.s.LockedUntil(f.ctx, scope, now)
		if err != nil {
			f.t.Fatalf("LockedUntil(%s, %v): %v", scope, now, err)
		}
		return until
	}

	t.Run("LockAndUnlock", func(t *testing.T) {
		f := newFixture(t, b)
		p := store.LockoutPolicy{MaxFailures: 5, Window: hour, LockFor: 10 * minute}
		r := f.mustCreate(tg, "1", at(0))
		other := f.mustCreate(tgWork, "2", at(0))
		if u := lockedUntil(f, tg, at(0)); !u.IsZero() {
			t.Errorf("LockedUntil before any failure = %v, want zero", u)
		}

		seq := f.lastSeq()
		var want []rec
		for i := range 4 {
			now := at(time.Duration(i) * minute)
			if u := fail(f, tg, now, p); !u.IsZero() {
				t.Errorf("failure %d of %d: locked until %v, want zero", i+1, p.MaxFailures, u)
			}
			want = append(want, scopeRec(store.KindApproveFailed, tg, ops, now))
		}
		// A new code does not reset the count (SPEC 2).
		n := f.mustCreate(tg, "3", at(3*minute+30*time.Second))
		want = append(want, reqRec(store.KindRequested, n, gate, n.CreatedAt))
		end := at(4*minute + p.LockFor)
		if u := fail(f, tg, at(4*minute), p); !u.Equal(end) {
			t.Errorf("failure %d of %d: locked until %v, want %v", p.MaxFailures, p.MaxFailures, u, end)
		}
		want = append(want,
			scopeRec(store.KindApproveFailed, tg, ops, at(4*minute)),
			scopeRec(store.KindLockedOut, tg, store.Actor{}, at(4*minute)))
		f.checkChanges("RecordApprovalFailure", seq, want...)

		for _, c := range []struct {
			scope store.Scope
			now   time.Time
			want  time.Time
		}{
			{tg, at(4 * minute), end},
			{tg, end.Add(-ms), end},
			{tg, end.Add(ms), time.Time{}},
			{tgWork, at(5 * minute), time.Time{}},
			{sig, at(5 * minute), time.Time{}},
		} {
			if u := lockedUntil(f, c.scope, c.now); !u.Equal(c.want) {
				t.Errorf("LockedUntil(%s, %s) = %v, want %v", c.scope, c.now.Format(time.RFC3339Nano), u, c.want)
			}
		}

		// Approve is refused while locked, even for an unknown code (the
		// lock is checked first, so it is no oracle), and changes nothing.
		seq = f.lastSeq()
		for _, p := range []store.ApproveParams{
			by(store.ViaCode, r, alice, at(5*minute)),
			by(store.ViaRequest, r, alice, at(5*minute)),
			{Scope: tg, CodeHash: hash("unknown"), Actor: alice, Now: at(5 * minute)},
		} {
			_, err := f.s.Approve(f.ctx, p)
			var le *store.LockoutError
			if !errors.Is(err, store.ErrLockedOut) || !errors.As(err, &le) {
				t.Errorf("Approve(id %q, code %x) while locked: error %v, want ErrLockedOut and *LockoutError", p.RequestID, short(p.CodeHash), err)
				continue
			}
			if !le.Until.Equal(end) || le.Scope != tg {
				t.Errorf("LockoutError = {Scope %s, Until %v}, want {%s, %v}", le.Scope, le.Until, tg, end)
			}
		}
		f.checkChanges("Approve while locked", seq)
		f.checkList(in(tg), at(5*minute), r, n)

		// Other scopes are not locked and count their own failures.
		f.approve(by(store.ViaCode, other, alice, at(5*minute)))
		for i := range p.MaxFailures - 1 {
			for _, scope := range []store.Scope{tgWork, sig} {
				if u := fail(f, scope, at(5*minute+time.Duration(i)*time.Second), p); !u.IsZero() {
					t.Errorf("failure %d in %s while %s is locked: locked until %v, want zero", i+1, scope, tg, u)
				}
			}
		}

		// After the lock, approvals work again.
		if _, e := f.approve(by(store.ViaCode, r, alice, end.Add(ms))); e.Sender != r.Sender {
			t.Errorf("Approve after the lock allowed %q, want %q", e.Sender, r.Sender)
		}
	})

	// The lock resets the count: failures before it never count again.
	t.Run("CountResetsAfterLock", func(t *testing.T) {
		f := newFixture(t, b)
		p := store.LockoutPolicy{MaxFailures: 3, Window: 2 * hour, LockFor: 10 * minute}
		for i := range 3 {
			fail(f, tg, at(time.Duration(i)*minute), p)
		}
		end := at(2*minute + p.LockFor)
		if u := lockedUntil(f, tg, at(3*minute)); !u.Equal(end) {
			t.Fatalf("LockedUntil after %d failures = %v, want %v", p.MaxFailures, u, end)
		}
		for i := range 2 {
			if u := fail(f, tg, end.Add(ms+time.Duration(i)*minute), p); !u.IsZero() {
				t.Errorf("failure %d after the lock ended: locked until %v, want zero (the count starts from zero)", i+1, u)
			}
		}
		now := end.Add(3 * minute)
		if u := fail(f, tg, now, p); !u.Equal(now.Add(p.LockFor)) {
			t.Errorf("failure %d after the lock ended: locked until %v, want %v", p.MaxFailures, u, now.Add(p.LockFor))
		}
	})

	// Failures older than the window do not count; the window slides.
	t.Run("Window", func(t *testing.T) {
		f := newFixture(t, b)
		p := store.LockoutPolicy{MaxFailures: 5, Window: hour, LockFor: 10 * minute}
		for i := range 4 {
			fail(f, tg, at(time.Duration(i)*minute), p)
		}
		// The failure at t0 is out of the window now: 4 count.
		if u := fail(f, tg, at(hour+30*time.Second), p); !u.IsZero() {
			t.Errorf("failure with only 4 within the window: locked until %v, want zero", u)
		}
		// 1m, 2m, 3m, 1h30s and 1h40s: 5 within one hour.
		now := at(hour + 40*time.Second)
		if u := fail(f, tg, now, p); !u.Equal(now.Add(p.LockFor)) {
			t.Errorf("5th failure within the window: locked until %v, want %v", u, now.Add(p.LockFor))
		}
	})
}

func testClearRequests(t *testing.T, b Backend) {
	f := newFixture(t, b)
	r1 := f.mustCreate(tg, "1", at(0))
	r2 := f.mustCreate(tg, "2", at(time.Second))
	r3 := f.mustCreate(tgWork, "3", at(2*time.Second))
	r4 := f.mustCreate(sig, "4", at(3*time.Second))
	e, _ := f.allow(tg, "9", alice, at(0))

	clear := func(filter store.RequestFilter, now time.Time, want ...store.Request) {
		t.Helper()
		seq := f.lastSeq()
		n, err := f.s.ClearRequests(f.ctx, filter, ops, now)
		if err != nil || n != len(want) {
			t.Errorf("ClearRequests(%+v) = %d, %v; want %d (%s), nil", filter, n, err, len(want), join(ids(want)))
		}
		var recs []rec
		for _, r := range want {
			recs = append(recs, reqRec(store.KindCleared, r, ops, now))
		}
		f.checkChanges(fmt.Sprintf("ClearRequests(%+v)", filter), seq, recs...)
	}
	clear(in(tgWork), at(minute), r3)
	f.checkList(all(), at(minute), r1, r2, r4)
	clear(store.RequestFilter{Channel: "telegram"}, at(2*minute), r1, r2)
	f.checkList(all(), at(2*minute), r4)
	clear(store.RequestFilter{Channel: "whatsapp"}, at(2*minute))
	r5 := f.mustCreate(tgWork, "5", at(2*minute))
	clear(store.RequestFilter{Account: "default"}, at(3*minute), r4)
	f.checkList(all(), at(3*minute), r5)
	clear(all(), at(4*minute), r5)
	clear(all(), at(5*minute))
	f.checkList(all(), at(5*minute))
	f.checkAllowed(all(), true, e)
}
