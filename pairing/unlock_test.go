package pairing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

func (e *env) lockOut(t *testing.T, account string) {
	t.Helper()
	for i := range 5 {
		_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", Account: account, CodeOrID: "ZZZZZZZZ"}, false, operator)
		if want := i == 4; errors.Is(err, store.ErrLockedOut) != want {
			t.Fatalf("wrong code %d on %q: %v", i+1, account, err)
		}
	}
}

func TestUnlockLiftsALockout(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("1"))
	e.lockOut(t, "")
	locked := e.clock.Now()
	e.clock.Advance(time.Minute)
	e.lockOut(t, "work")

	got, err := e.svc.ListLocked(ctx, pairing.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []api.Lockout{
		{Channel: "telegram", Account: "default", Until: locked.Add(time.Hour), Failures: 5},
		{Channel: "telegram", Account: "work", Until: locked.Add(time.Hour + time.Minute), Failures: 5},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ListLocked (-want +got):\n%s", diff)
	}
	if got, _ := e.svc.ListLocked(ctx, pairing.Filter{Channel: "telegram", Account: "work"}); len(got) != 1 || got[0].Account != "work" {
		t.Errorf("ListLocked of telegram/work: %+v", got)
	}

	u, err := e.svc.Unlock(ctx, "telegram", "", operator)
	if err != nil {
		t.Fatal(err)
	}
	until := locked.Add(time.Hour)
	if diff := cmp.Diff(api.Unlocked{Channel: "telegram", Account: "default", WasLocked: true, Until: &until, Failures: 5}, u); diff != "" {
		t.Errorf("Unlock (-want +got):\n%s", diff)
	}
	// Approvals work again at once, and the count starts from zero.
	if a := e.approve(t, d.Code); a.Allowed.Sender != "1" {
		t.Errorf("approval after unlock: %+v", a)
	}
	for range 4 {
		if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ZZZZZZZZ"}, false, operator); !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrLockedOut) {
			t.Fatalf("a wrong code after unlock: %v, want not found (the count restarted)", err)
		}
	}
	// telegram/work is still locked.
	if got, _ := e.svc.ListLocked(ctx, pairing.Filter{}); len(got) != 1 || got[0].Account != "work" {
		t.Errorf("ListLocked after unlocking default: %+v, want only work", got)
	}

	// Unlocking a scope that is not locked is fine, and says so.
	u, err = e.svc.Unlock(ctx, "telegram", "home", operator)
	if err != nil || u.WasLocked || u.Until != nil {
		t.Errorf("Unlock of an unlocked scope: %+v, %v; want WasLocked false, no error", u, err)
	}
	if _, err := e.svc.Unlock(ctx, "telegram", "a.b", operator); !errors.Is(err, pairing.ErrInvalidInput) {
		t.Errorf("Unlock of an invalid account: %v, want ErrInvalidInput", err)
	}

	// The audit log says who lifted it.
	cs, err := e.st.RecentChanges(ctx, store.ChangeQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.Kind == store.KindUnlocked {
			n++
			if c.Actor != operator || c.Scope != (store.Scope{Channel: "telegram", Account: "default"}) {
				t.Errorf("unlock record %+v", c)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d pairing.unlocked records, want 1", n)
	}
}
