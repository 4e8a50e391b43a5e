package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/pairgate/pairgate/store"
)

func testCreateList(t *testing.T, b Backend) {
	t.Run("RoundTripOrderFilters", func(t *testing.T) {
		f := newFixture(t, b)
		if got := f.list(all(), t0); len(got) != 0 {
			t.Fatalf("ListRequests on an empty store = %v, want none", ids(got))
		}
		// Created out of order: "oldest first" is by CreatedAt, not by
		// insertion (two gateways' clocks need not agree to the write).
		r2 := f.request(tg, "1002", at(2*time.Second))
		r0 := f.request(tg, "1000", at(0))
		r0.Name = "Zoë «ünïcode» 🦊 'quoted' \"name\""
		r1 := f.request(tg, "1001", at(time.Second+123*ms))
		r1.ExpiresAt = r1.CreatedAt.Add(30*minute + 7*ms)
		w := f.request(tgWork, "1000", at(3*time.Second))
		s := f.request(sig, "+4915112345678", at(4*time.Second))
		for _, r := range []store.Request{r2, r0, r1, w, s} {
			f.create(r, 10)
		}
		r0, r1, r2, w, s = stored(r0), stored(r1), stored(r2), stored(w), stored(s)

		now := at(minute)
		f.checkList(all(), now, r0, r1, r2, w, s)
		f.checkList(store.RequestFilter{Channel: "telegram"}, now, r0, r1, r2, w)
		f.checkList(in(tg), now, r0, r1, r2)
		f.checkList(in(tgWork), now, w)
		f.checkList(store.RequestFilter{Account: "default"}, now, r0, r1, r2, s)
		f.checkList(store.RequestFilter{Account: "work"}, now, w)
		f.checkList(store.RequestFilter{Channel: "signal"}, now, s)
		f.checkList(store.RequestFilter{Channel: "whatsapp"}, now)
		f.checkList(store.RequestFilter{Channel: "signal", Account: "work"}, now)
	})

	t.Run("MillisecondTruncation", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.request(tg, "1", t0.Add(123_456_789))
		r.ExpiresAt = r.CreatedAt.Add(ttl + 999_999)
		got, err := f.tryCreate(r, 3)
		if err != nil {
			t.Fatalf("CreateRequest: %v", err)
		}
		want := stored(r)
		if !want.CreatedAt.Equal(at(123*ms)) || !want.ExpiresAt.Equal(at(ttl+123*ms+ms)) {
			t.Fatalf("suite bug: truncation of %v/%v", want.CreatedAt, want.ExpiresAt)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("CreateRequest returned times not truncated to ms (-want +got):\n%s", diff)
		}
		f.checkList(all(), at(minute), want)
		f.checkChanges("CreateRequest", 0, reqRec(store.KindRequested, want, gate, want.CreatedAt))
	})

	t.Run("Expiry", func(t *testing.T) {
		f := newFixture(t, b)
		a := f.mustCreate(tg, "1", at(0))               // expires at 1h
		c := f.mustCreate(tgWork, "3", at(time.Second)) // expires at 1h+1s
		d := f.mustCreate(tg, "2", at(10*minute))       // expires at 1h10m
		f.checkList(all(), at(ttl-ms), a, c, d)
		// Expired at now means ExpiresAt <= now: at ExpiresAt the code is dead.
		f.checkList(all(), at(ttl), c, d)
		f.checkList(all(), at(ttl+2*time.Second), d)
		f.checkList(in(tg), at(ttl+2*time.Second), d)

		seq := f.lastSeq()
		now := at(ttl + 2*time.Second)
		n, err := f.s.ExpireRequests(f.ctx, now)
		if err != nil || n != 2 {
			t.Errorf("ExpireRequests(%v) = %d, %v; want 2, nil", now, n, err)
		}
		f.checkChanges("ExpireRequests", seq,
			reqRec(store.KindExpired, a, store.Actor{}, now),
			reqRec(store.KindExpired, c, store.Actor{}, now))
		// Purged, not hidden: listing at an earlier time shows them no more.
		f.checkList(all(), at(minute), d)

		seq = f.lastSeq()
		if n, err := f.s.ExpireRequests(f.ctx, now); err != nil || n != 0 {
			t.Errorf("second ExpireRequests(%v) = %d, %v; want 0, nil", now, n, err)
		}
		f.checkChanges("second ExpireRequests", seq)

		if n, err := f.s.ExpireRequests(f.ctx, at(2*hour)); err != nil || n != 1 {
			t.Errorf("ExpireRequests(2h) = %d, %v; want 1, nil", n, err)
		}
		f.checkList(all(), at(0))
	})

	t.Run("CreatePurgesExpiredOfItsScope", func(t *testing.T) {
		f := newFixture(t, b)
		const max = 2
		a := f.create(f.request(tg, "1", at(0)), max)
		c := f.create(f.request(tg, "2", at(minute)), max)
		other := f.create(f.request(tgWork, "9", at(0)), max)

		// The scope holds max requests, all expired: they must not count.
		seq := f.lastSeq()
		n := f.create(f.request(tg, "3", at(ttl+2*minute)), max)
		f.checkChanges("CreateRequest over expired requests", seq,
			reqRec(store.KindExpired, a, store.Actor{}, n.CreatedAt),
			reqRec(store.KindExpired, c, store.Actor{}, n.CreatedAt),
			reqRec(store.KindRequested, n, gate, n.CreatedAt))
		f.checkList(in(tg), at(0), n)

		// The other scope's expired request was left for its own scope
		// (or ExpireRequests) to purge.
		if got, err := f.s.ExpireRequests(f.ctx, at(ttl+2*minute)); err != nil || got != 1 {
			t.Errorf("ExpireRequests after CreateRequest = %d, %v; want 1 (%s), nil", got, err, other.ID)
		}
	})
}

func testPending(t *testing.T, b Backend) {
	f := newFixture(t, b)
	const max = 3
	first := f.create(f.request(tg, "1", at(0)), max)

	seq := f.lastSeq()
	got, err := f.tryCreate(f.request(tg, "1", at(minute)), max)
	wantErr(t, "CreateRequest for a pending sender", err, store.ErrPending)
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("CreateRequest with ErrPending returned (-existing +got):\n%s", diff)
	}
	f.checkChanges("CreateRequest with ErrPending", seq)
	f.checkList(all(), at(minute), first)

	// ErrPending wins over the cap: a pending sender gets its own request
	// back even when the scope is full (SPEC 2, rule 5 order).
	two := f.create(f.request(tg, "2", at(30*minute)), max)
	three := f.create(f.request(tg, "3", at(30*minute+ms)), max)
	got, err = f.tryCreate(f.request(tg, "1", at(31*minute)), max)
	wantErr(t, "CreateRequest for a pending sender in a full scope", err, store.ErrPending)
	if got.ID != first.ID {
		t.Errorf("CreateRequest with ErrPending in a full scope returned request %q, want %q", got.ID, first.ID)
	}

	// The same sender on another account or channel is another sender.
	f.create(f.request(tgWork, "1", at(minute)), max)
	f.create(f.request(sig, "1", at(minute)), max)

	// Once the request expired the sender may ask again (and the expired
	// request no longer fills the scope).
	seq = f.lastSeq()
	again := f.create(f.request(tg, "1", at(ttl+minute)), max)
	if again.ID == first.ID {
		t.Fatal("suite bug: same id")
	}
	f.checkChanges("CreateRequest after expiry", seq,
		reqRec(store.KindExpired, first, store.Actor{}, again.CreatedAt),
		reqRec(store.KindRequested, again, gate, again.CreatedAt))
	f.checkList(in(tg), at(ttl+minute), two, three, again)
}

func testAllowedSender(t *testing.T, b Backend) {
	// A gate whose view lags the store learns from CreateRequest that the
	// sender was allowed meanwhile, instead of issuing a code.
	t.Run("CreateRequestRefused", func(t *testing.T) {
		f := newFixture(t, b)
		f.allow(tg, "1", alice, at(0))
		seq := f.lastSeq()
		_, err := f.tryCreate(f.request(tg, "1", at(minute)), 3)
		wantErr(t, "CreateRequest for an allowed sender", err, store.ErrAllowed)
		f.checkChanges("CreateRequest with ErrAllowed", seq)
		f.checkList(all(), at(minute))

		// Checked before the cap and the code.
		var full []store.Request
		for _, sender := range []string{"2", "3", "4"} {
			full = append(full, f.create(f.request(tg, sender, at(minute)), 3))
		}
		_, err = f.tryCreate(f.request(tg, "1", at(2*minute)), 3)
		wantErr(t, "CreateRequest for an allowed sender in a full scope", err, store.ErrAllowed)
		dup := f.request(tg, "1", at(2*minute))
		dup.CodeHash = full[0].CodeHash
		_, err = f.tryCreate(dup, 10)
		wantErr(t, "CreateRequest for an allowed sender with a live code", err, store.ErrAllowed)

		// An approved sender is allowed too.
		f.approve(by(store.ViaCode, full[0], alice, at(3*minute)))
		_, err = f.tryCreate(f.request(tg, "2", at(4*minute)), 10)
		wantErr(t, "CreateRequest for an approved sender", err, store.ErrAllowed)

		// The allowlist is per scope, and a revoked sender may ask again.
		f.create(f.request(tgWork, "1", at(4*minute)), 3)
		f.create(f.request(sig, "1", at(4*minute)), 3)
		if _, err := f.s.Revoke(f.ctx, tg, "1", ops, at(5*minute)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		f.create(f.request(tg, "1", at(6*minute)), 10)
	})

	// Allow settles the sender's pending request: a code for a sender who
	// is already admitted would only confuse.
	t.Run("AllowClearsPending", func(t *testing.T) {
		f := newFixture(t, b)
		r := f.mustCreate(tg, "1", at(0))
		keep := f.mustCreate(tg, "2", at(time.Second))
		other := f.mustCreate(tgWork, "1", at(2*time.Second))
		seq := f.lastSeq()
		if _, changed := f.allow(tg, "1", alice, at(minute)); !changed {
			t.Error("Allow of a pending sender: changed = false")
		}
		f.checkChangesAnyOrder("Allow of a pending sender", seq,
			senderRec(store.KindAllowed, tg, "1", alice, at(minute)),
			reqRec(store.KindCleared, r, alice, at(minute)))
		f.checkList(all(), at(minute), keep, other)
		_, err := f.s.Approve(f.ctx, by(store.ViaCode, r, alice, at(2*minute)))
		wantErr(t, "Approve of a request cleared by Allow", err, store.ErrNotFound)

		// Reactivating a revoked sender settles its new request too.
		if _, err := f.s.Revoke(f.ctx, tg, "1", ops, at(3*minute)); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		r2 := f.mustCreate(tg, "1", at(4*minute))
		seq = f.lastSeq()
		if _, changed := f.allow(tg, "1", ops, at(5*minute)); !changed {
			t.Error("Allow of a revoked, pending sender: changed = false")
		}
		f.checkChangesAnyOrder("Allow of a revoked, pending sender", seq,
			senderRec(store.KindAllowed, tg, "1", ops, at(5*minute)),
			reqRec(store.KindCleared, r2, ops, at(5*minute)))
		f.checkList(all(), at(5*minute), keep, other)
	})
}

func testCap(t *testing.T, b Backend) {
	f := newFixture(t, b)
	const max = 3
	var in3 []store.Request
	for i, sender := range []string{"1", "2", "3"} {
		in3 = append(in3, f.create(f.request(tg, sender, at(time.Duration(i)*time.Second)), max))
	}
	seq := f.lastSeq()
	_, err := f.tryCreate(f.request(tg, "4", at(minute)), max)
	wantErr(t, "CreateRequest in a full scope", err, store.ErrCapReached)
	f.checkChanges("CreateRequest with ErrCapReached", seq)
	f.checkList(in(tg), at(minute), in3...)

	// The cap is checked before the code: a full scope is full.
	conflict := f.request(tg, "4", at(minute))
	conflict.CodeHash = in3[0].CodeHash
	_, err = f.tryCreate(conflict, max)
	wantErr(t, "CreateRequest in a full scope with a live code", err, store.ErrCapReached)

	// A lower cap than the scope holds is reached too.
	_, err = f.tryCreate(f.request(tg, "5", at(minute)), 2)
	wantErr(t, "CreateRequest above a lowered cap", err, store.ErrCapReached)

	// The cap is per (channel, account).
	w := f.create(f.request(tgWork, "4", at(minute)), max)
	s := f.create(f.request(sig, "4", at(minute)), max)
	f.create(f.request(tgWork, "5", at(minute+ms)), max)
	f.create(f.request(tgWork, "6", at(minute+2*ms)), max)
	_, err = f.tryCreate(f.request(tgWork, "7", at(2*minute)), max)
	wantErr(t, "CreateRequest in the second full scope", err, store.ErrCapReached)
	f.checkList(in(tg), at(2*minute), in3...)
	if got := f.list(in(tgWork), at(2*minute)); len(got) != 3 || got[0].ID != w.ID {
		t.Errorf("ListRequests(%s) = %v, want 3 requests starting with %s", tgWork, ids(got), w.ID)
	}
	f.checkList(in(sig), at(2*minute), s)

	// Once one expires there is room again.
	f.create(f.request(tg, "4", at(ttl+500*ms)), max)
}

func testCodeConflict(t *testing.T, b Backend) {
	f := newFixture(t, b)
	a := f.mustCreate(tg, "1", at(0))

	seq := f.lastSeq()
	dup := f.request(tg, "2", at(minute))
	dup.CodeHash = a.CodeHash
	_, err := f.tryCreate(dup, 10)
	wantErr(t, "CreateRequest with a live code hash in the same scope", err, store.ErrCodeConflict)
	f.checkChanges("CreateRequest with ErrCodeConflict", seq)
	f.checkList(all(), at(minute), a)

	// Codes are unique among all live codes (SPEC 2), not per scope.
	cross := f.request(sig, "3", at(minute))
	cross.CodeHash = a.CodeHash
	_, err = f.tryCreate(cross, 10)
	wantErr(t, "CreateRequest with a live code hash held in another scope", err, store.ErrCodeConflict)
	f.checkList(all(), at(minute), a)

	// An expired holder in the same scope is purged and does not conflict.
	reuse := f.request(tg, "4", at(ttl+minute))
	reuse.CodeHash = a.CodeHash
	reuse = f.create(reuse, 10)

	// An expired holder in another scope does not conflict either: it is
	// not live (CreateRequest purges it once its code is wanted).
	x := f.mustCreate(tgWork, "5", at(minute))
	y := f.request(sig, "6", at(ttl+2*minute))
	y.CodeHash = x.CodeHash
	y = f.create(y, 10)
	f.checkList(all(), at(ttl+2*minute), reuse, y)

	// The code now approves the live holder only.
	_, err = f.s.Approve(f.ctx, store.ApproveParams{Scope: tgWork, CodeHash: x.CodeHash, Actor: alice, Now: at(ttl + 3*minute)})
	wantErr(t, "Approve by the code of an expired request", err, store.ErrNotFound)
	r, _ := f.approve(store.ApproveParams{Scope: sig, CodeHash: y.CodeHash, Actor: alice, Now: at(ttl + 3*minute)})
	if r.ID != y.ID {
		t.Errorf("Approve by shared code hash approved %q, want %q", r.ID, y.ID)
	}
}

func testMarkRequestSent(t *testing.T, b Backend) {
	f := newFixture(t, b)
	r := f.mustCreate(tg, "1", at(0))
	other := f.mustCreate(tg, "2", at(0))
	seq := f.lastSeq()

	mark := func(id string, now time.Time) bool {
		t.Helper()
		ok, err := f.s.MarkRequestSent(f.ctx, id, now.Add(-window), now)
		if err != nil {
			t.Fatalf("MarkRequestSent(%s, %v): %v", id, now, err)
		}
		return ok
	}
	// The code was sent at creation: no resend within the window.
	if mark(r.ID, at(5*minute)) {
		t.Error("MarkRequestSent within the window of creation = true, want false")
	}
	// LastSentAt at exactly notAfter counts as "at or before".
	if !mark(r.ID, at(window)) {
		t.Error("MarkRequestSent with LastSentAt == notAfter = false, want true")
	}
	if mark(r.ID, at(window)) {
		t.Error("second MarkRequestSent with the same notAfter = true, want false")
	}
	if mark(r.ID, at(window+window-ms)) {
		t.Error("MarkRequestSent within the window of the last send = true, want false")
	}
	r.LastSentAt = at(window)
	f.checkList(all(), at(window+minute), r, other)

	// Concurrently, exactly one caller resends.
	now := at(25 * minute)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for range 8 {
		wg.Go(func() {
			<-start
			ok, err := f.s.MarkRequestSent(f.ctx, r.ID, now.Add(-window), now)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if ok {
				wins++
			}
		})
	}
	close(start)
	wg.Wait()
	if wins != 1 || len(errs) != 0 {
		t.Errorf("8 concurrent MarkRequestSent: %d returned true, errors %v; want exactly 1 true, no errors", wins, errs)
	}
	r.LastSentAt = now
	f.checkList(all(), now, r, other)

	// Unknown and expired requests are not marked (false, or ErrNotFound).
	for _, c := range []struct {
		what string
		id   string
		now  time.Time
	}{
		{"unknown request", "req_unknown", at(30 * minute)},
		{"expired request", other.ID, at(ttl + minute)},
	} {
		ok, err := f.s.MarkRequestSent(f.ctx, c.id, c.now.Add(-window), c.now)
		if ok || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			t.Errorf("MarkRequestSent on an %s = %v, %v; want false, nil or ErrNotFound", c.what, ok, err)
		}
	}
	// Resending a code is not a change of pairing state: no records.
	f.checkChanges("MarkRequestSent", seq)

	// A request created with a LastSentAt after its creation (an import's,
	// whose code pairgate cannot send) keeps it: no resend before then.
	imported := f.request(tg, "3", at(30*minute))
	imported.LastSentAt = imported.ExpiresAt
	imported = f.create(imported, 100)
	if !imported.LastSentAt.Equal(at(30*minute + ttl)) {
		t.Errorf("CreateRequest with LastSentAt at expiry returned LastSentAt %v, want %v", imported.LastSentAt, at(30*minute+ttl))
	}
	if mark(imported.ID, at(30*minute+ttl-minute)) {
		t.Error("MarkRequestSent before a later LastSentAt given at creation = true, want false")
	}
	f.checkList(in(tg), at(31*minute), r, other, imported)
}

func testMarkNotice(t *testing.T, b Backend) {
	f := newFixture(t, b)
	const kind = "max_pending"
	notice := func(scope store.Scope, sender, kind string, now time.Time) bool {
		t.Helper()
		ok, err := f.s.MarkNotice(f.ctx, scope, sender, kind, now.Add(-window), now)
		if err != nil {
			t.Fatalf("MarkNotice(%s, %s, %s, %v): %v", scope, sender, kind, now, err)
		}
		return ok
	}
	if !notice(tg, "1", kind, at(0)) {
		t.Error("first MarkNotice = false, want true")
	}
	if notice(tg, "1", kind, at(0)) {
		t.Error("repeated MarkNotice at the same time = true, want false")
	}
	if notice(tg, "1", kind, at(window-ms)) {
		t.Error("MarkNotice within the window = true, want false")
	}
	// Last told exactly at notAfter counts as "at or before".
	if !notice(tg, "1", kind, at(window)) {
		t.Error("MarkNotice after the window = false, want true")
	}
	if notice(tg, "1", kind, at(window+minute)) {
		t.Error("MarkNotice within the new window = true, want false")
	}

	// Per (scope, sender, kind): none of these were told yet.
	for _, c := range []struct {
		scope  store.Scope
		sender string
		kind   string
	}{
		{tg, "2", kind},
		{tg, "1", "declined"},
		{tgWork, "1", kind},
		{sig, "1", kind},
	} {
		if !notice(c.scope, c.sender, c.kind, at(window+minute)) {
			t.Errorf("first MarkNotice(%s, %s, %s) = false, want true: notices must be per scope, sender and kind", c.scope, c.sender, c.kind)
		}
	}

	// Concurrently, exactly one caller tells the sender, the first time and
	// after the window.
	for round, now := range []time.Time{at(hour), at(hour + window)} {
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			wins int
			errs []error
		)
		start := make(chan struct{})
		for range 8 {
			wg.Go(func() {
				<-start
				ok, err := f.s.MarkNotice(f.ctx, tg, "3", kind, now.Add(-window), now)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if ok {
					wins++
				}
			})
		}
		close(start)
		wg.Wait()
		if wins != 1 || len(errs) != 0 {
			t.Errorf("round %d: 8 concurrent MarkNotice: %d returned true, errors %v; want exactly 1 true, no errors", round, wins, errs)
		}
	}
	// Rate-limiting notices is not a change of pairing state: no records.
	f.checkChanges("MarkNotice", 0)
}
