package pairing_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pairgate/pairgate/api"
	"github.com/pairgate/pairgate/config"
	"github.com/pairgate/pairgate/pairing"
	"github.com/pairgate/pairgate/secret"
	"github.com/pairgate/pairgate/store"
	"github.com/pairgate/pairgate/store/sqlite"
)

// blinkingStore fails every read of the change log while failing is set,
// as a store does for a moment when its disk or connection hiccups.
type blinkingStore struct {
	store.Store
	failing atomic.Bool
	failed  atomic.Int64 // reads refused
}

func (b *blinkingStore) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	if b.failing.Load() {
		b.failed.Add(1)
		return nil, fmt.Errorf("%w: injected read failure", store.ErrUnavailable)
	}
	return b.Store.Changes(ctx, after, limit)
}

// A revocation made by another process while this one cannot read the
// change log is applied once reads work again, with no later change to wake
// the follower: it retries on a timer.
func TestRunRetriesAFailedReadOfTheLog(t *testing.T) {
	path := t.TempDir() + "/pairgate.db"
	open := func() *sqlite.Store {
		return openSQLite(t, sqlite.Options{Path: path, PollInterval: 20 * time.Millisecond})
	}
	sec, err := secret.FromBytes(testKey)
	if err != nil {
		t.Fatal(err)
	}
	// The allowlist policy answers an unknown sender without writing
	// anything, so probing Admit appends nothing that could wake the
	// follower.
	cfg := config.Default()
	cfg.Pairing.Policy = config.PolicyAllowlist
	gate := &blinkingStore{Store: open()}
	gateway, err := pairing.New(pairing.Options{Store: gate, Secret: sec, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := pairing.New(pairing.Options{Store: open(), Secret: sec, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { gateway.Run(runCtx); close(ran) }()
	t.Cleanup(func() { stop(); <-ran })

	in := pairing.Inbound{Channel: "telegram", Sender: "123"}
	verdictWithin := func(want api.Verdict, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < limit {
			if gateway.Admit(ctx, in).Verdict == want {
				return time.Since(start)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("the gateway did not answer %s within %v", want, limit)
		return 0
	}
	if _, err := cli.Allow(ctx, "telegram", "", []string{"123"}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	verdictWithin(api.Admit, 2*time.Second)

	gate.failing.Store(true)
	if _, err := cli.Revoke(ctx, "telegram", "", "123", store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	// The revocation's wake-up arrives (poll: 20 ms) while reads fail.
	time.Sleep(400 * time.Millisecond)
	if gate.failed.Load() == 0 {
		t.Fatal("the follower never tried to read the log while it was failing: the test proves nothing")
	}
	if d := gateway.Admit(ctx, in); d.Verdict != api.Admit {
		t.Fatalf("revocation applied without reading the log: %+v", d)
	}
	gate.failing.Store(false)
	took := verdictWithin(api.Drop, 3*time.Second)
	if took > 1500*time.Millisecond {
		t.Errorf("revocation applied %v after reads worked again; want about a second at most", took)
	}
	t.Logf("revocation applied %v after reads worked again", took)
}

// countingStore counts reads of the change log.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (c *countingStore) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	c.reads.Add(1)
	return c.Store.Changes(ctx, after, limit)
}

// An approval is admitted as soon as Approve returns. When it is the next
// change the allowlist expects, the allowlist applies it without reading
// the log back; when another process wrote in between, it reads the log up
// to the approval, in order, so the other change is not skipped.
func TestApproveAppliesItsOwnChange(t *testing.T) {
	path := t.TempDir() + "/pairgate.db"
	open := func() *sqlite.Store { return openSQLite(t, sqlite.Options{Path: path}) }
	sec, err := secret.FromBytes(testKey)
	if err != nil {
		t.Fatal(err)
	}
	gate := &countingStore{Store: open()}
	gateway, err := pairing.New(pairing.Options{Store: gate, Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := pairing.New(pairing.Options{Store: open(), Secret: sec, Config: config.Default()})
	if err != nil {
		t.Fatal(err)
	}
	if err := gateway.Load(ctx); err != nil {
		t.Fatal(err)
	}
	// No follower runs: what the gateway admits comes from its own calls.
	challenge := func(sender string) string {
		t.Helper()
		d := gateway.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: sender})
		if d.Verdict != api.Challenge {
			t.Fatalf("Admit(%s) = %+v, want a challenge", sender, d)
		}
		return d.Code
	}
	approve := func(code string) {
		t.Helper()
		if _, err := gateway.Approve(ctx, pairing.Target{Channel: "telegram", CodeOrID: code}, false, store.Actor{Name: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	admitted := func(sender string) bool {
		return gateway.Admit(ctx, pairing.Inbound{Channel: "telegram", Sender: sender}).Verdict == api.Admit
	}

	// The view has caught up with the challenge; the approval is next.
	code := challenge("1")
	approve(challenge("2"))
	gate.reads.Store(0)
	approve(code)
	if !admitted("1") || !admitted("2") {
		t.Fatal("an approved sender is not admitted when Approve returns")
	}
	if n := gate.reads.Load(); n != 0 {
		t.Errorf("the approval that was the next change read the log %d times; want 0", n)
	}

	// Another process allows 3 between: the view reads the log, and has both.
	code = challenge("4")
	if _, err := cli.Allow(ctx, "telegram", "", []string{"3"}, store.ViaManual, store.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	gate.reads.Store(0)
	approve(code)
	if !admitted("4") || !admitted("3") {
		t.Errorf("after an approval that followed another process's change: 4 admitted %v, 3 admitted %v; want both",
			admitted("4"), admitted("3"))
	}
	if gate.reads.Load() == 0 {
		t.Error("the approval that followed another process's change did not read the log: the other change was skipped")
	}
}

// openSQLite opens a store for the test, closed when it ends.
func openSQLite(t *testing.T, o sqlite.Options) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
