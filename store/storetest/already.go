package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

// testAlreadyApproved checks what Approve remembers of an approval: the
// request is known as approved, in its scope, until its code's lifetime
// ends; after that its code is an unknown code again.
func testAlreadyApproved(t *testing.T, b Backend) {
	t.Run("UntilTheCodeExpires", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		_, entry := f.approve(by(store.ViaCode, r, alice, at(minute)))
		seq := f.lastSeq()
		for _, now := range []time.Time{at(2 * minute), r.ExpiresAt.Add(-ms)} {
			for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
				got, err := f.s.Approve(f.ctx, by(via, r, ops, now))
				wantErr(t, fmt.Sprintf("Approve of an approved request via %s at %s", via, now.Format(time.TimeOnly)), err, store.ErrAlreadyApproved)
				gotR, gotE := got.Request, got.Entry
				if got.Seq != 0 {
					t.Errorf("Approve of an approved request returned Seq %d, want 0: it recorded nothing", got.Seq)
				}
				if gotR.ID != r.ID || gotR.Sender != r.Sender || !cmp.Equal(entry, gotE) {
					t.Errorf("Approve of an approved request via %s returned request %q, entry %+v; want %q and %+v", via, gotR.ID, gotE, r.ID, entry)
				}
			}
		}
		for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
			_, err := f.s.Approve(f.ctx, by(via, r, ops, r.ExpiresAt))
			wantErr(t, "Approve of an approved request once its code expired, via "+string(via), err, store.ErrNotFound)
			_, err = f.s.Reject(f.ctx, by(via, r, ops, r.ExpiresAt))
			wantErr(t, "Reject of an approved request once its code expired, via "+string(via), err, store.ErrNotFound)
		}
		f.checkChanges("Approve and Reject of an approved request", seq)
	})

	t.Run("FindApproved", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tgWork, "1", at(0))
		live := f.mustCreate(sig, "2", at(0))
		if _, err := f.s.FindApproved(f.ctx, r.CodeHash, "", at(minute)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindApproved of a pending request: %v, want ErrNotFound", err)
		}
		f.approve(by(store.ViaCode, r, alice, at(minute)))
		for _, key := range []struct {
			hash []byte
			id   string
		}{{r.CodeHash, ""}, {nil, r.ID}} {
			got, err := f.s.FindApproved(f.ctx, key.hash, key.id, at(2*minute))
			if err != nil || got.ID != r.ID || got.Scope != tgWork || got.Sender != "1" {
				t.Errorf("FindApproved(%x, %q) = %+v, %v; want %s on %s", key.hash, key.id, got, err, r.ID, tgWork)
			}
			if _, err := f.s.FindApproved(f.ctx, key.hash, key.id, r.ExpiresAt); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("FindApproved once the code expired: %v, want ErrNotFound", err)
			}
		}
		if _, err := f.s.FindApproved(f.ctx, live.CodeHash, "", at(2*minute)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("FindApproved of another, pending request: %v", err)
		}
	})

	// Account isolation holds for approved requests too: another scope
	// does not learn that a code was approved.
	t.Run("OtherScopes", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		f.approve(by(store.ViaCode, r, alice, at(minute)))
		for _, scope := range []store.Scope{tgWork, sig} {
			for _, via := range []store.Via{store.ViaCode, store.ViaRequest} {
				p := by(via, r, alice, at(2*minute))
				p.Scope = scope
				_, err := f.s.Approve(f.ctx, p)
				wantErr(t, fmt.Sprintf("Approve in %s of a request approved in %s via %s", scope, tg, via), err, store.ErrNotFound)
				if errors.Is(err, store.ErrAlreadyApproved) {
					t.Errorf("Approve in %s learnt that a %s request was approved", scope, tg)
				}
			}
		}
	})

	// Revoked since: the answer carries the entry as it is now, so the
	// caller can say the sender is not admitted; nothing is reactivated.
	t.Run("RevokedSince", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		f.approve(by(store.ViaRequest, r, alice, at(minute)))
		revoked, err := f.s.Revoke(f.ctx, tg, "1", ops, at(2*minute))
		if err != nil {
			t.Fatal(err)
		}
		seq := f.lastSeq()
		got, err := f.s.Approve(f.ctx, by(store.ViaCode, r, alice, at(3*minute)))
		wantErr(t, "Approve of an approved request whose sender was revoked", err, store.ErrAlreadyApproved)
		if diff := cmp.Diff(revoked, got.Entry); diff != "" {
			t.Errorf("entry (-want +got):\n%s", diff)
		}
		f.checkChanges("Approve of an approved, revoked request", seq)
		f.checkAllowed(in(tg), false)
	})

	// While approvals are locked every approval is refused, an approved
	// request's too: the lock is checked first.
	t.Run("Locked", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		f.approve(by(store.ViaCode, r, alice, at(minute)))
		p := store.LockoutPolicy{MaxFailures: 1, Window: hour, LockFor: 10 * minute}
		if _, err := f.s.RecordApprovalFailure(f.ctx, tg, ops, at(2*minute), p); err != nil {
			t.Fatal(err)
		}
		_, err := f.s.Approve(f.ctx, by(store.ViaCode, r, alice, at(3*minute)))
		wantErr(t, "Approve of an approved request while locked", err, store.ErrLockedOut)
		_, err = f.s.Approve(f.ctx, by(store.ViaCode, r, alice, at(13*minute)))
		wantErr(t, "Approve of an approved request after the lock", err, store.ErrAlreadyApproved)
	})

	// A later request of the same sender gets a new code and is approved
	// on its own; the earlier approval does not stand in its way.
	t.Run("NewRequestOfTheSameSender", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		f.approve(by(store.ViaCode, r, alice, at(minute)))
		if _, err := f.s.Revoke(f.ctx, tg, "1", ops, at(2*minute)); err != nil {
			t.Fatal(err)
		}
		r2 := f.mustCreate(tg, "1", at(3*minute))
		if _, e := f.approve(by(store.ViaCode, r2, alice, at(4*minute))); !e.Active() {
			t.Errorf("Approve of the sender's new request: entry %+v is not active", e)
		}
		_, err := f.s.Approve(f.ctx, by(store.ViaCode, r, alice, at(5*minute)))
		wantErr(t, "Approve of the first request again", err, store.ErrAlreadyApproved)
	})
}
