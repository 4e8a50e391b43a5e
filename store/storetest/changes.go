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
	if cs, err := f.s.RecentChanges(f.ctx, store.ChangeQuery{Limit: 10}); err != nil || len(cs) != 0 {
		t.Errorf("RecentChanges(Limit 10) on an empty store = %d changes, %v; want none", len(cs), err)
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
	_, err = f.s.Approve(f.ctx, store.ApproveParams{Scope: tg, RequestID: "req_unknown", Actor: alice, Now: at(minute)})
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

	testRecentChanges(t, f, full)
}

// testRecentChanges checks the audit view over full, the whole log of
// testChangeLog in order:
//
//	 1 requested       telegram/default  gate
//	 2 requested       telegram/default  gate
//	 3 approved        telegram/default  alice
//	 4 rejected        telegram/default  ops
//	 5 allowed         telegram/default  alice
//	 6 revoked         telegram/default  ops
//	 7 requested       telegram/work     gate
//	 8 expired         telegram/work     (actor not promised)
//	 9 requested       signal/default    gate
//	10 cleared         signal/default    alice
//	11 approve_failed  signal/default    ops
//	12 approve_failed  signal/default    ops
//	13 locked_out      signal/default    (actor not promised)
func testRecentChanges(t *testing.T, f *fixture, full []store.Change) {
	t.Helper()
	if len(full) != 13 {
		t.Fatalf("testRecentChanges expects the 13 changes of testChangeLog, got %d", len(full))
	}
	newest := slices.Clone(full)
	slices.Reverse(newest)
	// selected is what q selects of the log, newest first, ignoring Limit.
	selected := func(q store.ChangeQuery) []store.Change {
		out := []store.Change{}
		for _, c := range newest {
			if (q.Before == 0 || c.Seq < q.Before) && (q.Kind == "" || c.Kind == q.Kind) &&
				(q.Channel == "" || c.Scope.Channel == q.Channel) && (q.Actor == "" || c.Actor.Name == q.Actor) {
				out = append(out, c)
			}
		}
		return out
	}
	recent := func(q store.ChangeQuery) []store.Change {
		t.Helper()
		got, err := f.s.RecentChanges(f.ctx, q)
		if err != nil {
			t.Fatalf("RecentChanges(%+v): %v", q, err)
		}
		if len(got) > q.Limit {
			t.Errorf("RecentChanges(%+v) returned %d changes, more than the limit", q, len(got))
		}
		return got
	}

	// Each filter alone and combined. n is how many of the log's changes
	// match, counted by hand from the table above so that the check does
	// not only agree with selected; -1 where a change whose actor is not
	// promised could count.
	cases := []struct {
		q store.ChangeQuery
		n int
	}{
		{store.ChangeQuery{}, 13},
		{store.ChangeQuery{Kind: store.KindRequested}, 4},
		{store.ChangeQuery{Kind: store.KindApproveFailed}, 2},
		{store.ChangeQuery{Kind: store.KindDevicePaired}, 0},
		{store.ChangeQuery{Channel: "telegram"}, 8},
		{store.ChangeQuery{Channel: "signal"}, 5},
		{store.ChangeQuery{Channel: "whatsapp"}, 0},
		{store.ChangeQuery{Actor: alice.Name}, 3},
		{store.ChangeQuery{Actor: gate.Name}, 4},
		{store.ChangeQuery{Actor: ops.Name}, -1},
		{store.ChangeQuery{Actor: "cli:nobody"}, 0},
		{store.ChangeQuery{Kind: store.KindRequested, Channel: "telegram"}, 3},
		{store.ChangeQuery{Kind: store.KindRequested, Channel: "signal", Actor: gate.Name}, 1},
		{store.ChangeQuery{Channel: "telegram", Actor: alice.Name}, 2},
		{store.ChangeQuery{Kind: store.KindApproveFailed, Channel: "signal", Actor: ops.Name}, 2},
		{store.ChangeQuery{Kind: store.KindApproveFailed, Actor: alice.Name}, 0},
		{store.ChangeQuery{Kind: store.KindRequested, Channel: "whatsapp"}, 0},
	}
	for _, tc := range cases {
		want := selected(tc.q)
		if tc.n >= 0 && len(want) != tc.n {
			t.Errorf("%+v selects %d of the log's changes, want %d: the log is not what testRecentChanges expects", tc.q, len(want), tc.n)
		}
		// Limit is honoured: the newest Limit of the matches.
		for _, limit := range []int{1, 2, 3, len(full), len(full) + 5} {
			q := tc.q
			q.Limit = limit
			if diff := cmp.Diff(want[:min(limit, len(want))], recent(q), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("RecentChanges(%+v) (-want +got):\n%s", q, diff)
			}
		}
		// Pages of 3, each from the Seq of the previous page's last
		// change, add up to the whole newest-first list.
		q := tc.q
		q.Limit = 3
		var got []store.Change
		for pages := 0; ; pages++ {
			if pages > len(full) {
				t.Fatalf("paging %+v: no end after %d pages", tc.q, pages)
			}
			page := recent(q)
			got = append(got, page...)
			if len(page) < q.Limit {
				break
			}
			q.Before = page[len(page)-1].Seq
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("paging %+v by 3 with Before (-want +got):\n%s", tc.q, diff)
		}
	}

	// Before on its own: only older changes; at or beyond the oldest,
	// none; past the newest, all of them.
	for _, tc := range []struct {
		before int64
		want   []store.Change
	}{
		{full[6].Seq, newest[len(newest)-6:]},
		{full[1].Seq, newest[len(newest)-1:]},
		{full[0].Seq, nil},
		{1, nil},
		{full[len(full)-1].Seq + 1, newest},
		{full[len(full)-1].Seq + 1000, newest},
	} {
		q := store.ChangeQuery{Limit: 100, Before: tc.before}
		if diff := cmp.Diff(tc.want, recent(q), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("RecentChanges(%+v) (-want +got):\n%s", q, diff)
		}
	}
	q := store.ChangeQuery{Limit: 100, Before: full[0].Seq, Kind: store.KindRequested}
	if got := recent(q); len(got) != 0 {
		t.Errorf("RecentChanges(%+v) = %d changes, want none: nothing is older than the oldest", q, len(got))
	}

	// A query without a limit, or before a negative position, is a
	// mistake of the caller's, not a request for everything.
	for _, q := range []store.ChangeQuery{{}, {Limit: -1}, {Limit: 10, Before: -1}} {
		if got, err := f.s.RecentChanges(f.ctx, q); err == nil {
			t.Errorf("RecentChanges(%+v) = %d changes, want an error", q, len(got))
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
