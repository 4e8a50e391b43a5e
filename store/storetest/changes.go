package storetest

import (
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pairgate/pairgate/store"
)

func testChangeLog(t *testing.T, b Backend) {
	f := newFixture(t, b)
	if cs, err := f.s.Changes(f.ctx, 0, 10); err != nil || len(cs) != 0 {
		t.Errorf("Changes(0, 10) on an empty store = %d changes, %v; want none", len(cs), err)
	}
	if cs, err := f.s.RecentChanges(f.ctx, 10); err != nil || len(cs) != 0 {
		t.Errorf("RecentChanges(10) on an empty store = %d changes, %v; want none", len(cs), err)
	}

	// Every state change, each appending exactly its documented records;
	// refused calls and no-ops in between append nothing.
	var (
		want []rec
		reqs []store.Request
	)
	a := f.mustCreate(tg, "1", at(0))
	c := f.mustCreate(tg, "2", at(time.Second))
	reqs = append(reqs, a, c)
	want = append(want, reqRec(store.KindRequested, a, gate, a.CreatedAt), reqRec(store.KindRequested, c, gate, c.CreatedAt))

	refused := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s succeeded, want an error", what)
		}
	}
	_, err := f.tryCreate(f.request(tg, "1", at(2*time.Second)), 3)
	refused("CreateRequest for a pending sender", err)
	_, err = f.tryCreate(f.request(tg, "3", at(2*time.Second)), 2)
	refused("CreateRequest in a full scope", err)
	dup := f.request(tg, "3", at(2*time.Second))
	dup.CodeHash = a.CodeHash
	_, err = f.tryCreate(dup, 3)
	refused("CreateRequest with a live code", err)
	_, _, err = f.s.Approve(f.ctx, store.ApproveParams{Scope: tg, RequestID: "req_unknown", Actor: alice, Now: at(minute)})
	refused("Approve of an unknown request", err)
	_, err = f.s.Reject(f.ctx, store.ApproveParams{Scope: tg, RequestID: "req_unknown", Actor: alice, Now: at(minute)})
	refused("Reject of an unknown request", err)
	_, err = f.s.Revoke(f.ctx, tg, "404", alice, at(minute))
	refused("Revoke of an unknown sender", err)
	if n, err := f.s.ClearRequests(f.ctx, store.RequestFilter{Channel: "whatsapp"}, alice, at(minute)); err != nil || n != 0 {
		t.Errorf("ClearRequests of nothing = %d, %v", n, err)
	}
	if n, err := f.s.ExpireRequests(f.ctx, at(minute)); err != nil || n != 0 {
		t.Errorf("ExpireRequests of nothing = %d, %v", n, err)
	}

	f.approve(by(store.ViaCode, a, alice, at(minute)))
	want = append(want, reqRec(store.KindApproved, a, alice, at(minute)))
	if _, err := f.s.Reject(f.ctx, by(store.ViaRequest, c, ops, at(2*minute))); err != nil {
		t.Fatalf("Reject: %v", err)
	}
	want = append(want, reqRec(store.KindRejected, c, ops, at(2*minute)))
	f.allow(tg, "5", alice, at(3*minute))
	want = append(want, senderRec(store.KindAllowed, tg, "5", alice, at(3*minute)))
	f.allow(tg, "5", alice, at(3*minute+time.Second)) // no-op
	if _, err := f.s.Revoke(f.ctx, tg, "5", ops, at(4*minute)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	want = append(want, senderRec(store.KindRevoked, tg, "5", ops, at(4*minute)))
	d := f.mustCreate(tgWork, "6", at(5*minute))
	want = append(want, reqRec(store.KindRequested, d, gate, d.CreatedAt))
	if n, err := f.s.ExpireRequests(f.ctx, d.ExpiresAt.Add(minute)); err != nil || n != 1 {
		t.Errorf("ExpireRequests = %d, %v; want 1", n, err)
	}
	want = append(want, reqRec(store.KindExpired, d, store.Actor{}, d.ExpiresAt.Add(minute)))
	e := f.mustCreate(sig, "7", at(2*hour))
	want = append(want, reqRec(store.KindRequested, e, gate, e.CreatedAt))
	if n, err := f.s.ClearRequests(f.ctx, all(), alice, at(2*hour+minute)); err != nil || n != 1 {
		t.Errorf("ClearRequests = %d, %v; want 1", n, err)
	}
	want = append(want, reqRec(store.KindCleared, e, alice, at(2*hour+minute)))
	p := store.LockoutPolicy{MaxFailures: 2, Window: hour, LockFor: 10 * minute}
	for i, now := range []time.Time{at(2*hour + 2*minute), at(2*hour + 3*minute)} {
		if _, err := f.s.RecordApprovalFailure(f.ctx, sig, ops, now, p); err != nil {
			t.Fatalf("RecordApprovalFailure %d: %v", i, err)
		}
		want = append(want, scopeRec(store.KindApproveFailed, sig, ops, now))
	}
	want = append(want, scopeRec(store.KindLockedOut, sig, store.Actor{}, at(2*hour+3*minute)))
	reqs = append(reqs, d, e)

	full := f.since(0)
	if diff := cmp.Diff(want, recs(full)); diff != "" {
		t.Fatalf("change log (-want +got):\n%s", diff)
	}
	for _, c := range full {
		for _, r := range reqs {
			for _, code := range []string{hex.EncodeToString(r.CodeHash), base64.StdEncoding.EncodeToString(r.CodeHash), base64.RawURLEncoding.EncodeToString(r.CodeHash)} {
				if strings.Contains(c.Detail, code) {
					t.Errorf("change %d (%s) Detail %q holds a code hash", c.Seq, c.Kind, c.Detail)
				}
			}
		}
	}

	// Changes pages by Seq, whatever the limit.
	for _, limit := range []int{1, 3, 5, len(full), len(full) + 1} {
		var got []store.Change
		after := int64(0)
		for pages := 0; pages <= len(full)+1; pages++ {
			page, err := f.s.Changes(f.ctx, after, limit)
			if err != nil {
				t.Fatalf("Changes(%d, %d): %v", after, limit, err)
			}
			if len(page) > limit {
				t.Errorf("Changes(%d, %d) returned %d changes", after, limit, len(page))
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page...)
			after = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(full, got); diff != "" {
			t.Errorf("paging Changes with limit %d (-want +got):\n%s", limit, diff)
		}
	}
	for k := range full {
		page, err := f.s.Changes(f.ctx, full[k].Seq, 2)
		if err != nil {
			t.Fatalf("Changes: %v", err)
		}
		if diff := cmp.Diff(full[k+1:min(k+3, len(full))], page, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("Changes(%d, 2) (-want +got):\n%s", full[k].Seq, diff)
		}
	}

	// RecentChanges: newest first, at most limit.
	newest := slices.Clone(full)
	slices.Reverse(newest)
	for _, limit := range []int{1, 3, len(full), len(full) + 5} {
		got, err := f.s.RecentChanges(f.ctx, limit)
		if err != nil {
			t.Fatalf("RecentChanges(%d): %v", limit, err)
		}
		if diff := cmp.Diff(newest[:min(limit, len(newest))], got); diff != "" {
			t.Errorf("RecentChanges(%d) (-want +got):\n%s", limit, diff)
		}
	}
}

func testChanged(t *testing.T, b Backend) {
	t.Run("SameStore", func(t *testing.T) {
		f := newFixture(t, b)
		var r store.Request
		ops := []struct {
			what string
			do   func()
		}{
			{"CreateRequest", func() { r = f.mustCreate(tg, "1", at(0)) }},
			{"Approve", func() { f.approve(by(store.ViaCode, r, alice, at(minute))) }},
			{"Revoke", func() {
				if _, err := f.s.Revoke(f.ctx, tg, "1", alice, at(2*minute)); err != nil {
					t.Fatalf("Revoke: %v", err)
				}
			}},
			{"Allow", func() { f.allow(tg, "1", alice, at(3*minute)) }},
			{"RecordApprovalFailure", func() {
				if _, err := f.s.RecordApprovalFailure(f.ctx, tg, alice, at(4*minute), store.LockoutPolicy{MaxFailures: 5, Window: hour, LockFor: hour}); err != nil {
					t.Fatalf("RecordApprovalFailure: %v", err)
				}
			}},
		}
		for _, op := range ops {
			ch := f.s.Changed()
			op.do()
			if !waitClosed(ch, notifyLatency) {
				t.Errorf("Changed() not closed within %v after %s through the same store", notifyLatency, op.what)
			}
		}
	})

	// A change made by another process (the CLI) or replica must wake
	// followers within a second (SPEC 2: revocation seen within 1 s).
	t.Run("OtherStore", func(t *testing.T) {
		f := newFixture(t, b)
		other := f.open()
		follow := func(t *testing.T, follower store.Store, what string, kind store.ChangeKind, do func()) {
			t.Helper()
			after := f.lastSeq()
			ch := follower.Changed()
			do()
			done := time.Now()
			deadline := done.Add(notifyLatency)
			seen := func() bool {
				cs, err := follower.Changes(f.ctx, after, 100)
				if err != nil {
					t.Fatalf("Changes: %v", err)
				}
				return slices.ContainsFunc(cs, func(c store.Change) bool { return c.Kind == kind })
			}
			for {
				if !waitClosed(ch, time.Until(deadline)) {
					t.Errorf("%s through another store on the same database: Changed() not closed within %v", what, notifyLatency)
					return
				}
				if seen() {
					t.Logf("%s through another store woke the follower after %v", what, time.Since(done).Round(time.Millisecond))
					return
				}
				// A spurious wake-up: follow as a follower does, registering
				// before reading so that nothing falls in between.
				ch = follower.Changed()
				if seen() {
					return
				}
			}
		}
		follow(t, f.s, "Allow", store.KindAllowed, func() {
			if _, err := other.Allow(f.ctx, store.AllowParams{Scope: tg, Senders: []store.AllowSender{{Sender: "1"}}, Via: store.ViaManual, Actor: alice, Now: at(0)}); err != nil {
				t.Fatalf("Allow through the second store: %v", err)
			}
		})
		follow(t, f.s, "Revoke", store.KindRevoked, func() {
			if _, err := other.Revoke(f.ctx, tg, "1", alice, at(minute)); err != nil {
				t.Fatalf("Revoke through the second store: %v", err)
			}
		})
		f.checkAllowed(all(), false)
		follow(t, other, "Allow (reverse direction)", store.KindAllowed, func() { f.allow(tg, "2", alice, at(2*minute)) })
		if got, err := other.ListAllowed(f.ctx, all(), false); err != nil || len(got) != 1 || got[0].Sender != "2" {
			t.Errorf("second store's ListAllowed after the first store's Allow = %v, %v; want sender 2", got, err)
		}
	})
}
