package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// GateState answers what LockedUntil, DeclinedSince and PendingFor answer,
// in every state a sender and scope can be in.
func testGateState(t *testing.T, b Backend) {
	f := newFixture(t, b)
	check := func(what string, scope store.Scope, sender string, now time.Time, limit int) store.GateState {
		t.Helper()
		since := now.Add(-window)
		got, err := f.s.GateState(f.ctx, scope, sender, now, since, limit)
		if err != nil {
			t.Fatalf("%s: GateState: %v", what, err)
		}
		var want store.GateState
		if want.LockedUntil, err = f.s.LockedUntil(f.ctx, scope, now); err != nil {
			t.Fatal(err)
		}
		if want.Declined, err = f.s.DeclinedSince(f.ctx, scope, sender, since); err != nil {
			t.Fatal(err)
		}
		if want.Request, want.Found, want.Live, err = f.s.PendingFor(f.ctx, scope, sender, now, limit); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: GateState differs from the three reads (-reads +GateState):\n%s", what, diff)
		}
		return got
	}
	if g := check("empty store", tg, "1", at(0), 3); g.Found || g.Live != 0 || g.Declined || !g.LockedUntil.IsZero() {
		t.Errorf("empty store: %+v", g)
	}
	r1 := f.mustCreate(tg, "1", at(0))
	f.mustCreate(tg, "2", at(minute))
	f.mustCreate(tgWork, "3", at(minute))
	if g := check("pending sender", tg, "1", at(2*minute), 3); !g.Found || g.Request.ID != r1.ID || g.Live != 2 {
		t.Errorf("pending sender: %+v", g)
	}
	if g := check("count capped at the limit", tg, "9", at(2*minute), 1); g.Found || g.Live != 1 {
		t.Errorf("capped count: %+v", g)
	}
	check("the pending sender's request expired", tg, "1", r1.ExpiresAt, 3)
	if _, err := f.s.Reject(f.ctx, by(store.ViaRequest, r1, alice, at(3*minute))); err != nil {
		t.Fatal(err)
	}
	if g := check("declined sender", tg, "1", at(4*minute), 3); !g.Declined {
		t.Errorf("declined: %+v", g)
	}
	check("the decline is older than the window", tg, "1", at(3*minute+window+ms), 3)
	lp := store.LockoutPolicy{MaxFailures: 1, Window: hour, LockFor: hour}
	if _, err := f.s.RecordApprovalFailure(f.ctx, tgWork, alice, at(5*minute), lp); err != nil {
		t.Fatal(err)
	}
	if g := check("locked scope", tgWork, "3", at(6*minute), 3); g.LockedUntil.IsZero() || !g.Found {
		t.Errorf("locked scope: %+v", g)
	}
	check("another scope is not locked", tg, "2", at(6*minute), 3)
	check("the lock is over", tgWork, "3", at(5*minute+hour), 3)
}
