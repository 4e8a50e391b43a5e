package storetest

import (
	"testing"

	"github.com/pairgate/pairgate/store"
)

// Times come from callers (several processes, replicas on several hosts):
// they need not rise with Seq. Retention never prunes a change younger
// than Retention because an older one was appended after it.
func testRetentionSkew(t *testing.T, b Backend) {
	f := newFixture(t, b)
	f.allow(tg, "young", alice, at(10*minute)) // Seq 1
	f.allow(tg, "old", alice, at(0))           // Seq 2, from a clock behind
	f.allow(tg, "now", alice, at(hour))        // Seq 3
	res, err := f.s.GarbageCollect(f.ctx, at(hour+5*minute), store.GCPolicy{Retention: hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Changes != 0 {
		t.Errorf("GarbageCollect pruned %d changes; Seq 1 (made at 0h10m) is younger than the retention at 1h05m, so none may go (the log is pruned as a prefix)", res.Changes)
	}
}
