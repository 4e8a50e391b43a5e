package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pairgate/pairgate/store"
)

// serve collects garbage as soon as it starts, and counts it in the
// metrics: a request that expired is purged (recorded as pairing.expired),
// a notice past the rate window is deleted.
func TestServeCollectsGarbage(t *testing.T) {
	o, w, other := options(t)
	ctx := context.Background()
	tg := store.Scope{Channel: "telegram", Account: "default"}
	old := time.Now().Add(-2 * time.Hour)
	if _, err := other.CreateRequest(ctx, store.CreateRequestParams{MaxPending: 3, Actor: store.Actor{Name: "gate"},
		Request: store.Request{ID: "req_old", Scope: tg, Sender: "1", CodeHash: []byte("hash of an old code"), CreatedAt: old, ExpiresAt: old.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if told, err := other.MarkNotice(ctx, tg, "2", "max_pending", old.Add(-time.Hour), old); err != nil || !told {
		t.Fatalf("MarkNotice: %v %v", told, err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	e := start(runCtx, t, o, w, other, nil)

	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		_, body, err := e.get("/metrics")
		if err == nil && strings.Contains(body, `pairgate_gc_deleted_total{what="requests"} 1`) && strings.Contains(body, `pairgate_gc_deleted_total{what="notices"} 1`) {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no garbage collection counted 5 s after start:\n%s", grep(body, "pairgate_gc_"))
		}
	}
	recent, err := other.RecentChanges(ctx, store.ChangeQuery{Limit: 1})
	if err != nil || len(recent) != 1 || recent[0].Kind != store.KindExpired || recent[0].RequestID != "req_old" {
		t.Errorf("the expired request is not recorded as expired: %+v %v", recent, err)
	}
}

func grep(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
