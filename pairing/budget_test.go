package pairing_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/store"
)

// A flood of invented senders at a full scope costs at most 10 durable
// notices per scope and rate window, however many senders it invents;
// each sender is still told at most once per window, and the next window
// tells the next ten.
func TestFloodAtAFullScopeIsCheap(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Pairing.Limits.MaxPending = 1 })
	if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: "1"}); d.Verdict != api.Challenge {
		t.Fatal(d)
	}
	head := func() int64 {
		t.Helper()
		recent, err := e.st.RecentChanges(ctx, store.ChangeQuery{Limit: 1})
		if err != nil || len(recent) != 1 {
			t.Fatal(err)
		}
		return recent[0].Seq
	}
	start := head()
	flood := func(from, n int) (told int) {
		for i := from; i < from+n; i++ {
			d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: fmt.Sprint(1000 + i), ReplyBy: api.ReplyByOutbound})
			if d.Verdict != api.Drop || d.Reason != api.ReasonMaxPending {
				t.Fatalf("sender %d at a full scope: %+v", 1000+i, d)
			}
		}
		msgs, err := e.st.Outbound(ctx, 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Cause == store.CauseMaxPending {
				told++
			}
		}
		return told
	}
	if told := flood(0, 500); told != 10 {
		t.Errorf("500 invented senders in one window: %d told, want 10", told)
	}
	if head() != start {
		t.Errorf("the flood appended %d changes", head()-start)
	}
	// The same senders again in the window: nobody is told twice.
	if told := flood(0, 20); told != 10 {
		t.Errorf("after the same senders again: %d told in all, want still 10", told)
	}
	e.clock.Advance(10*time.Minute + time.Second)
	if told := flood(500, 500); told != 20 {
		t.Errorf("a window later: %d told in all, want 20", told)
	}
	// Another scope has a budget of its own.
	if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "work", Sender: "2"}); d.Verdict != api.Challenge {
		t.Fatal(d)
	}
	if d := e.svc.Admit(ctx, pairing.Inbound{Channel: "telegram", Account: "work", Sender: "3"}); d.Reply == "" {
		t.Errorf("the first sender at another full scope is not told: %+v", d)
	}
}
