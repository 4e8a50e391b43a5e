package pairing_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

func (e *env) failures(t *testing.T) int {
	t.Helper()
	cs, err := e.st.RecentChanges(ctx, store.ChangeQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cs {
		if c.Kind == store.KindApproveFailed {
			n++
		}
	}
	return n
}

// Five double clicks on an approve button approve five senders and lock
// nothing: the second click of each is told it was approved already.
func TestDoubleClicksNeverLockOut(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 5 {
		d := e.svc.Admit(ctx, dm(strings.Repeat("7", i+1)))
		first := e.approve(t, d.Code)
		second := e.approve(t, d.Code)
		if first.Already || !second.Already {
			t.Fatalf("click %d: first Already=%v, second Already=%v; want false, true", i+1, first.Already, second.Already)
		}
		if second.Allowed != first.Allowed || second.RequestID != first.RequestID {
			t.Errorf("click %d: the second answer %+v differs from the first %+v", i+1, second, first)
		}
		if byID := e.approve(t, d.RequestID); !byID.Already {
			t.Errorf("click %d: approving the request id after the code: %+v, want Already", i+1, byID)
		}
	}
	if n := e.failures(t); n != 0 {
		t.Errorf("%d failed approvals recorded, want 0", n)
	}
	if d := e.svc.Admit(ctx, dm("99")); d.Verdict != api.Challenge {
		t.Errorf("a new sender after the double clicks: %+v, want a challenge (approvals not locked)", d)
	}

	// A wrong code still counts: five of them lock.
	for i := range 5 {
		_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: "ZZZZZZZZ"}, false, operator)
		if want := i == 4; errors.Is(err, store.ErrLockedOut) != want {
			t.Fatalf("wrong code %d: %v; want locked out %v", i+1, err, want)
		}
	}
}

// An approved code is remembered for the code's lifetime (1 h from its
// creation); after that it is as unknown as an expired code, and typing it
// is a wrong code again.
func TestApprovedCodeAfterItsLifetime(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("1"))
	e.approve(t, d.Code)
	e.clock.Advance(time.Hour - time.Millisecond)
	if a := e.approve(t, d.Code); !a.Already {
		t.Fatalf("just within the code's lifetime: %+v, want Already", a)
	}
	e.clock.Advance(time.Millisecond)
	_, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.Code}, false, operator)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the code's lifetime: %v, want not found", err)
	}
	if n := e.failures(t); n != 1 {
		t.Errorf("%d failed approvals recorded, want 1 (the expired code)", n)
	}
	if _, err := e.svc.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: d.RequestID}, false, operator); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the request id after the code's lifetime: %v, want not found", err)
	}
}

// Rejecting an approved request does nothing and says so: the sender stays
// allowed, nobody is declined, and it is no wrong code.
func TestRejectOfAnApprovedRequest(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("1"))
	e.approve(t, d.Code)
	for _, target := range []string{d.Code, d.RequestID} {
		_, err := e.svc.Reject(ctx, pairing.Target{Channel: "telegram", CodeOrID: target}, operator)
		if !errors.Is(err, store.ErrAlreadyApproved) || !strings.Contains(err.Error(), "revoke") {
			t.Errorf("Reject(%s) of an approved request: %v; want ErrAlreadyApproved pointing at revoke", target, err)
		}
	}
	if got := e.svc.Admit(ctx, dm("1")); got.Verdict != api.Admit {
		t.Errorf("after the refused rejects: %+v, want admitted", got)
	}
	if n := e.failures(t); n != 0 {
		t.Errorf("%d failed approvals recorded, want 0", n)
	}
}

// Approved, then revoked: approving the code again changes nothing and
// answers with the entry as it is, revoked.
func TestApprovedThenRevoked(t *testing.T) {
	e := newEnv(t, nil)
	d := e.svc.Admit(ctx, dm("1"))
	e.approve(t, d.Code)
	if _, err := e.svc.Revoke(ctx, "telegram", "", "1", operator); err != nil {
		t.Fatal(err)
	}
	a := e.approve(t, d.Code)
	if !a.Already || a.Allowed.RevokedAt == nil {
		t.Errorf("approval after a revoke: %+v, want Already with the revoked entry", a)
	}
	if got := e.svc.Admit(ctx, dm("1")); got.Verdict == api.Admit {
		t.Errorf("the revoked sender is admitted again: %+v", got)
	}
}
