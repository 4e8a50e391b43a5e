package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func testPendingFor(t *testing.T, b Backend) {
	f := newFixture(t, b)
	r1 := f.mustCreate(tg, "1", at(0))
	f.mustCreate(tg, "2", at(minute))
	f.mustCreate(tg, "3", at(2*minute))
	f.mustCreate(tgWork, "1", at(0))

	got, found, live, err := f.s.PendingFor(f.ctx, tg, "1", at(3*minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if !found || live != 3 {
		t.Fatalf("PendingFor(tg, 1): found %v, live %d; want true, 3", found, live)
	}
	if diff := cmp.Diff(stored(r1), got); diff != "" {
		t.Errorf("the sender's request (-want +got):\n%s", diff)
	}
	// The count stops at limit: the work is bounded by the cap.
	if _, _, live, _ := f.s.PendingFor(f.ctx, tg, "9", at(3*minute), 2); live != 2 {
		t.Errorf("live counted past limit 2: %d", live)
	}
	if _, found, live, _ := f.s.PendingFor(f.ctx, tg, "9", at(3*minute), 10); found || live != 3 {
		t.Errorf("unknown sender: found %v, live %d", found, live)
	}
	// Other scopes are separate.
	if _, found, live, _ := f.s.PendingFor(f.ctx, sig, "1", at(3*minute), 10); found || live != 0 {
		t.Errorf("other channel: found %v, live %d", found, live)
	}
	if _, found, live, _ := f.s.PendingFor(f.ctx, tgWork, "1", at(3*minute), 10); !found || live != 1 {
		t.Errorf("other account: found %v, live %d", found, live)
	}
	// Expired requests neither match nor count, before any purge.
	if _, found, live, _ := f.s.PendingFor(f.ctx, tg, "1", at(ttl), 10); found || live != 2 {
		t.Errorf("at r1's expiry: found %v, live %d; want false, 2", found, live)
	}
	// A read: nothing is recorded.
	if changes, _ := f.s.Changes(f.ctx, 0, 100); len(changes) != 4 {
		t.Errorf("PendingFor appended changes: %d records, want the 4 requests", len(changes))
	}
}
