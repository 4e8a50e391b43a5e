package storetest

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

func testUnlock(t *testing.T, b Backend) {
	f := newFixture(t, b)
	p := store.LockoutPolicy{MaxFailures: 2, Window: hour, LockFor: 30 * minute}
	lock := func(scope store.Scope, now time.Time) {
		t.Helper()
		for range p.MaxFailures {
			if _, err := f.s.RecordApprovalFailure(f.ctx, scope, ops, now, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	lockouts := func(filter store.RequestFilter, now time.Time, want ...store.Lockout) {
		t.Helper()
		got, err := f.s.Lockouts(f.ctx, filter, now)
		if err != nil {
			t.Fatalf("Lockouts(%+v): %v", filter, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Lockouts(%+v, %s) (-want +got):\n%s", filter, now.Format(time.TimeOnly), diff)
		}
	}
	lockouts(all(), at(0))
	lock(tgWork, at(0))
	lock(tg, at(minute))
	lock(sig, at(2*minute))
	tgLock := store.Lockout{Scope: tg, Until: at(31 * minute), Failures: 2}
	workLock := store.Lockout{Scope: tgWork, Until: at(30 * minute), Failures: 2}
	sigLock := store.Lockout{Scope: sig, Until: at(32 * minute), Failures: 2}
	// Ordered by channel, then account.
	lockouts(all(), at(3*minute), sigLock, tgLock, workLock)
	lockouts(store.RequestFilter{Channel: "telegram"}, at(3*minute), tgLock, workLock)
	lockouts(in(tgWork), at(3*minute), workLock)
	lockouts(store.RequestFilter{Channel: "whatsapp"}, at(3*minute))
	// A lock that ended is not listed.
	lockouts(all(), at(30*minute), sigLock, tgLock)

	seq := f.lastSeq()
	got, err := f.s.Unlock(f.ctx, tg, alice, at(4*minute))
	if err != nil {
		t.Fatalf("Unlock of a locked scope: %v", err)
	}
	if diff := cmp.Diff(tgLock, got); diff != "" {
		t.Errorf("Unlock returned (-want +got):\n%s", diff)
	}
	f.checkChanges("Unlock", seq, scopeRec(store.KindUnlocked, tg, alice, at(4*minute)))
	if u, err := f.s.LockedUntil(f.ctx, tg, at(4*minute)); err != nil || !u.IsZero() {
		t.Errorf("LockedUntil after Unlock = %v, %v; want zero", u, err)
	}
	lockouts(all(), at(4*minute), sigLock, workLock)
	r := f.mustCreate(tg, "1", at(4*minute))
	f.approve(by(store.ViaCode, r, alice, at(5*minute)))

	// Nothing to lift: a scope never locked, one just unlocked, one whose
	// lock ended. Nothing is recorded.
	seq = f.lastSeq()
	for _, c := range []struct {
		scope store.Scope
		now   time.Time
	}{{tg, at(5 * minute)}, {store.Scope{Channel: "whatsapp", Account: "default"}, at(5 * minute)}, {tgWork, at(30 * minute)}} {
		_, err := f.s.Unlock(f.ctx, c.scope, alice, c.now)
		wantErr(t, "Unlock of "+c.scope.String()+" not locked", err, store.ErrNotFound)
	}
	f.checkChanges("Unlock of scopes not locked", seq)

	// After Unlock the count starts from zero: one failure does not lock
	// again.
	if u, err := f.s.RecordApprovalFailure(f.ctx, tg, ops, at(6*minute), p); err != nil || !u.IsZero() {
		t.Errorf("first failure after Unlock: locked until %v (%v), want not locked", u, err)
	}
	lockouts(in(sig), at(6*minute), sigLock)
}
